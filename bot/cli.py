"""The `ohbot` command and its subcommands (argparse; each subcommand a small function)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.config import Settings, load_settings
from bot.retrieve import open_retriever


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.data_dir, args.knowledge_dir, args.model, args.backend)


def _fail(message: str, code: int = 2) -> int:
    print(f"ohbot: {message}", file=sys.stderr)
    return code


def cmd_build_index(args: argparse.Namespace, settings: Settings) -> int:
    from index_builder.build import build_index

    report = build_index(
        settings.knowledge_dir, settings.index_dir, settings.model, settings.backend,
        full=args.full, cache_dir=settings.data_dir / "models",
    )
    print(report.as_text())
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from bot.retrieve import Filters

    retriever = open_retriever(settings)
    filters = Filters(region=args.region, doc_type=args.doc_type, audience=args.audience)
    passages = retriever.search(args.query, top_k=args.top_k, filters=filters, method=args.method)
    if args.json:
        print(json.dumps({"query": args.query, "passages": [p.as_json() for p in passages]}, ensure_ascii=False))
        return 0
    if not passages:
        print("没有找到相关内容。")
    for n, p in enumerate(passages, 1):
        date = p.doc.get("date") or "日期不详"
        print(f"{n}. [{p.score:.4f}] {p.chunk.heading}（{date}）\n   {p.chunk.text}\n")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.evaluate import evaluate, format_table, load_questions

    questions = load_questions(Path(args.file))
    result = evaluate(open_retriever(settings), questions)
    print(json.dumps(result, ensure_ascii=False, indent=1) if args.json else format_table(result))
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """One question, or with `-` one question per input line (the model is loaded once)."""
    from bot.answer import answer
    from bot.dialogue import MAX_QUESTION_CHARS

    retriever = open_retriever(settings)
    questions = sys.stdin if args.question == "-" else [args.question]
    for line in questions:
        question = line.strip()
        if args.question == "-" and not question:
            continue
        result = answer(retriever, question[:MAX_QUESTION_CHARS], role=args.role, region=args.region)
        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
        else:
            print(result.text + "\n", flush=True)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels import console
    from bot.dialogue import open_dialogue

    console.run(open_dialogue(settings))
    return 0


def cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels import telegram
    from bot.dialogue import open_dialogue

    if not settings.telegram_token:
        return _fail("set TELEGRAM_BOT_TOKEN to run the Telegram bot (or use `ohbot chat`)")
    telegram.run(settings, open_dialogue(settings), webhook_url=args.webhook_url, port=args.port)
    return 0


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: Telegram when a token is set, else the console; builds the index on first run."""
    if settings.telegram_token:
        args.webhook_url, args.port = None, 8443
        return cmd_telegram(args, settings)
    return cmd_chat(args, settings)


def cmd_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.state import State, load_salt

    state = State(settings.state_db, load_salt(settings.data_dir, settings.salt))
    rows = state.gaps(args.limit)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    for row in rows if not args.json else []:
        print(f"{row['n']:>4}  {row['example']}")
    if not rows and not args.json:
        print("没有未回答的问题记录。")
    return 0


def cmd_bank_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bank import load_bank

    items = load_bank(settings.knowledge_dir)
    if args.json:
        print(json.dumps([i.as_json() for i in items], ensure_ascii=False))
    else:
        for i in items:
            print(f"{i.id}  [{i.type}/{i.dimension}/{i.audience}]  {i.stem}  答案：{i.answer}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohbot", description="职业健康 education bot and knowledge base")
    parser.add_argument("--data-dir", help="where the index and database live (env OHBOT_DATA_DIR, default ./data)")
    parser.add_argument("--knowledge-dir", help="source documents (env OHBOT_KNOWLEDGE_DIR, default ./knowledge)")
    parser.add_argument("--model", help="sentence-transformers model name or path (env OHBOT_EMBEDDING_MODEL)")
    parser.add_argument("--backend", choices=["onnx", "torch"], help="embedding backend (env OHBOT_EMBEDDING_BACKEND)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("build-index", help="build or update the knowledge index")
    p.add_argument("--full", action="store_true", help="re-embed everything instead of reusing unchanged chunks")
    p.set_defaults(func=cmd_build_index)

    p = sub.add_parser("search", help="hybrid search of the knowledge index")
    p.add_argument("query")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--method", choices=["hybrid", "bm25", "dense"], default="hybrid")
    p.add_argument("--region")
    p.add_argument("--doc-type")
    p.add_argument("--audience", choices=["worker", "employer", "bureau"])
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("eval", help="measure retrieval on a JSONL question set")
    p.add_argument("what", choices=["retrieval"])
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("ask", help="answer a question (or `-`: one per stdin line)")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--role", choices=["worker", "employer", "bureau"])
    p.add_argument("--region")
    p.set_defaults(func=cmd_ask)

    sub.add_parser("chat", help="talk to the bot in this terminal").set_defaults(func=cmd_chat)
    p = sub.add_parser("telegram", help="run the Telegram bot (TELEGRAM_BOT_TOKEN)")
    p.add_argument("--webhook-url", help="webhook mode at this public URL (default: long polling)")
    p.add_argument("--port", type=int, default=8443, help="local port for webhook mode")
    p.set_defaults(func=cmd_telegram)
    sub.add_parser("start", help="the main job: Telegram with a token, else the console").set_defaults(func=cmd_start)
    bank = sub.add_parser("bank", help="the quiz bank").add_subparsers(dest="bank_command", metavar="COMMAND")
    p = bank.add_parser("list", help="every item of the quiz bank")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bank_list)
    p = sub.add_parser("gaps", help="most frequent questions the bot could not answer")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gaps)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        settings = _settings(args)
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
