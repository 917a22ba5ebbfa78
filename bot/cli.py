"""The `ohbot` command and its subcommands (argparse; each subcommand a small function).

Every subcommand imports what it needs inside its function: a command that needs no index and no
model (report, campaign, responses, bank, gaps) imports neither the retrieval code nor onnxruntime,
jieba or numpy's heavier users.
"""
from __future__ import annotations

import argparse
import errno
import io
import json
import sys
import traceback
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from bot.awareness.report import GROUP_KEYS, PROFILE_KEYS  # parser choices (a light import: no charts)
from bot.config import (
    AWARE_THRESHOLD,
    AWARENESS_TARGET,
    CONSOLE_PORT,
    DEFAULT_LISTEN,
    FORM_SIZE,
    MIN_GROUP_N,
    Settings,
    load_settings,
)
from bot.errors import DatabaseUnavailable, OhbotError


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the global flags (over the environment)."""
    return load_settings(args.data_dir, args.knowledge_dir, args.model, args.backend,
                         database_url=args.database_url)


def _fail(message: str, code: int = 2) -> int:
    """Print `ohbot: message` on stderr; the exit status."""
    print(f"ohbot: {message}", file=sys.stderr)
    return code


def cmd_build_index(args: argparse.Namespace, settings: Settings) -> int:
    """Build or update the index: progress bars and the full report on a terminal, else one summary
    line (and any errors)."""
    from index_builder.build import build_index

    interactive = sys.stderr.isatty()
    report = build_index(
        settings.knowledge_dir, settings.index_dir, settings.model, settings.backend,
        full=args.full, cache_dir=settings.models_dir, progress=interactive,
    )
    if interactive:
        print(report.as_text())
    else:
        print("\n".join([report.summary(), *(f"error: {e}" for e in report.errors)]))
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """Hybrid (or one-ranking) search of the index, as text or JSON."""
    from bot.answering.retrieve import Filters, open_retriever

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
    """`eval retrieval`: ranking figures; `eval answers`: what users see, judged per question."""
    if args.what == "answers":
        return cmd_eval_answers(args, settings)
    from bot.answering.evaluate import evaluate, format_table, load_questions
    from bot.answering.retrieve import open_retriever

    questions = load_questions(Path(args.file))
    result = evaluate(open_retriever(settings), questions)
    print(json.dumps(result, ensure_ascii=False, indent=1) if args.json else format_table(result))
    return 0


def cmd_eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    """Every question of FILE through the answerer, judged on the text shown (README "Answering")."""
    from bot.answering.answer import answer
    from bot.answering.evaluate_answers import as_json, evaluate_answers, format_report, load_items
    from bot.answering.retrieve import open_retriever

    items = load_items(Path(args.file))
    retriever = open_retriever(settings)

    def ask(question: str) -> tuple[str, str, float, str]:
        result = answer(retriever, question)
        return result.decision, result.text, result.confidence, result.draft

    summary, judged = evaluate_answers(items, ask)
    print(json.dumps(as_json(summary, judged), ensure_ascii=False, indent=1) if args.json
          else format_report(summary, judged))
    return 0


def _stdin() -> TextIO:
    """Standard input as text that never fails to decode: invalid UTF-8 becomes U+FFFD (under a C
    locale Python would otherwise hand on lone surrogates that nothing can encode again)."""
    stream = sys.stdin
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(encoding="utf-8", errors="replace")
    return stream


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """One question, or with `-` one question per input line (the model is loaded once). With --json
    every input line gets exactly one JSON object on its own output line, in order: the answer, or
    {"question", "error"} where there is none (empty, too long, a failure) — one bad line never
    stops the batch. Questions over the dialogue's limit are refused as the dialogue refuses them."""
    import logging

    from bot.answering.answer import answer
    from bot.answering.retrieve import open_retriever
    from bot.dialogue.core import too_long
    from bot.text.clean import scrub

    retriever = open_retriever(settings)
    batch = args.question == "-"
    failed = 0
    for line in (_stdin() if batch else [args.question]):
        question = scrub(line.strip()) or ""
        error = "empty question" if not question else too_long(question)
        result = None
        if error is None:
            try:
                result = answer(retriever, question, role=args.role, region=args.region)
            except Exception as exc:  # one line's failure is that line's error, not the batch's end
                if not batch:
                    raise
                logging.getLogger("ohbot.ask").exception("question failed")
                error = f"{type(exc).__name__}: {exc}"
        if result is None:
            failed += 1
            if args.json:
                print(json.dumps({"question": question, "error": error}, ensure_ascii=False), flush=True)
            elif question or not batch:
                print(f"{error}\n", flush=True)
            continue
        if args.json:
            print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
        else:
            print(result.text + "\n", flush=True)
    return 1 if failed and not batch else 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """The dialogue in this terminal."""
    from bot.channels import console
    from bot.dialogue.core import open_dialogue

    console.run(open_dialogue(settings), stdin=_stdin(), first=getattr(args, "first", "/start"))
    return 0


def cmd_quiz(args: argparse.Namespace, settings: Settings) -> int:
    """The bot's quiz in this terminal (the same forms, campaign rules and stored answers)."""
    args.first = "/quiz"
    return cmd_chat(args, settings)


def cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    """The Telegram bot (needs TELEGRAM_BOT_TOKEN)."""
    from bot.channels import telegram
    from bot.dialogue.core import open_dialogue
    from bot.storage import dirlock

    if not settings.telegram_token:
        return _fail("set TELEGRAM_BOT_TOKEN to run the Telegram bot (or use `ohbot chat`)")
    # one long-polling process per data directory (bot/storage/dirlock.py), taken before the slow start
    lock = None if args.webhook_url else dirlock.hold(settings.data_dir, "telegram-polling", "polling Telegram")
    try:
        telegram.run(settings, open_dialogue(settings), webhook_url=args.webhook_url, listen=args.listen,
                     port=args.port)
    finally:
        if lock is not None:
            lock.release()
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """The web service: WeChat, WeCom and Telegram callbacks and /healthz in one ASGI app."""
    from bot.web.app import serve

    serve(settings, host=args.listen, port=args.port)
    return 0


def cmd_wechat_menu(args: argparse.Namespace, settings: Settings) -> int:
    """Create the Official Account's custom menu (问答 · 测验 · 更多: 单位义务自查, 我的资料)."""
    from wechatpy.exceptions import WeChatClientException

    from bot.channels import redact
    from bot.channels.wechat import create_menu, menu_summary
    from bot.storage.channels import TokenStore
    from bot.storage.state import open_state

    if not settings.wechat_enabled:
        return _fail("set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN first")
    redact.install(settings.secrets())
    try:
        create_menu(settings, TokenStore(open_state(settings)))
    except WeChatClientException as exc:
        return _fail(f"the platform refused the menu: errcode {exc.errcode} {exc.errmsg}")
    print(f"已创建公众号自定义菜单：{menu_summary()}（微信客户端最长约 5 分钟后显示）")
    return 0


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    """The main job (`make run`): the web service on 127.0.0.1:8000 (the web chat at /, the console at /console/, the
    WeChat/WeCom/Telegram webhooks that are configured); with TELEGRAM_BOT_TOKEN but no webhook URL
    the same process long-polls Telegram. Builds the index on first run; on the very first run it
    creates the console's `admin` account and prints its one-time password, once, on this terminal
    only (never into a log). The terminal chat is `ohbot chat`."""
    from bot.storage import dirlock
    from bot.storage.staff import open_staff
    from bot.web.app import serve

    polling = bool(settings.telegram_token and not settings.telegram_webhook_url)
    # one long-polling process per data directory, as `ohbot telegram` (bot/storage/dirlock.py)
    lock = dirlock.hold(settings.data_dir, "telegram-polling", "polling Telegram") if polling else None
    password = open_staff(settings).first_admin()
    address = f"http://{DEFAULT_LISTEN}:{CONSOLE_PORT}"
    print(f"ohbot 网页服务：{address}/ （网页聊天）  {address}/console/ （控制台）；终端聊天请用 ohbot chat", flush=True)
    if password:
        print(f"首次运行：已创建控制台管理员账户 admin，一次性密码 {password}\n"
              "（只显示这一次；首次登录后须修改）", flush=True)
    if polling:
        print("Telegram：长轮询（同一进程）", flush=True)
    try:
        serve(settings, host=DEFAULT_LISTEN, port=CONSOLE_PORT, **({"telegram_polling": True} if polling else {}))
    finally:
        if lock is not None:
            lock.release()
    return 0


def cmd_gaps(args: argparse.Namespace, settings: Settings) -> int:
    """Refused questions and 👎 answers together, most frequent first (with the 👎 reasons)."""
    from bot.storage.state import open_state

    rows = open_state(settings).gaps(args.limit)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("没有未回答的问题或差评记录。")
    for row in rows:
        kinds = "，".join(p for p in (f"未回答 {row['refused']}" if row["refused"] else "",
                                       f"👎 {row['down']}" if row["down"] else "") if p)
        print(f"{row['n']:>4}  {row['example']}  （{kinds}）")
        for reason in row["reasons"]:
            print(f"        原因：{reason}")
    return 0


def cmd_bank_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every quiz item (no index, no model)."""
    from bot.quiz.bank import load_bank

    items = load_bank(settings.knowledge_dir)
    if args.json:
        print(json.dumps([i.as_json() for i in items], ensure_ascii=False))
    else:
        for i in items:
            print(f"{i.id}  [{i.type}/{i.dimension}/{i.audience}]  {i.stem}  答案：{i.answer}")
    return 0

# ---- campaigns, reports and responses (no index, no model) ---------------------------------------
MAX_ERRORS_SHOWN = 50


def _quiz_state(settings: Settings) -> Any:
    """The state database of the data directory."""
    from bot.storage.state import open_state

    state = open_state(settings)
    return state


def _date(text: str) -> str:
    """A YYYY-MM-DD argument, checked."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def cmd_campaign_create(args: argparse.Namespace, settings: Settings) -> int:
    """A new quiz campaign."""
    from bot.quiz import forms as quiz

    c = quiz.create_campaign(_quiz_state(settings), args.name, args.start, args.end, region=args.region,
                             threshold=args.threshold, form_size=args.form_size)
    print(f"已创建测评活动“{c.name}”：{c.start} 至 {c.end}，地区 {c.region or '不限'}，"
          f"知晓阈值 {c.threshold:.0%}，每卷 {c.form_size} 题")
    return 0


def cmd_campaign_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every campaign with its counts of forms."""
    from bot.awareness.campaigns import campaign_counts
    from bot.quiz import forms as quiz

    state = _quiz_state(settings)
    counts = campaign_counts(state)
    rows = [{**asdict(c), **counts.get(c.name, {"counted": 0, "practice": 0})} for c in quiz.list_campaigns(state)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("还没有测评活动（ohbot campaign create NAME --start DATE --end DATE）。")
    for r in rows:
        status = "进行中" if r["status"] == "open" else "已结束"
        print(f"{r['name']}  {r['start']}–{r['end']}  {r['region'] or '不限地区'}  阈值 {r['threshold']:.0%}  "
              f"{r['form_size']} 题  {status}  计分答卷 {r['counted']} 份，练习 {r['practice']} 份")
    return 0


def cmd_campaign_close(args: argparse.Namespace, settings: Settings) -> int:
    """End a campaign."""
    from bot.quiz import forms as quiz

    quiz.close_campaign(_quiz_state(settings), args.name)
    print(f"测评活动“{args.name}”已结束。")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """A campaign's awareness report, as text or JSON, and optionally as files."""
    from bot.awareness.campaigns import campaign_report, label_report
    from bot.awareness.population import load_population
    from bot.awareness.report import format_text, write_outputs
    from bot.quiz.bank import load_bank
    from bot.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(settings.knowledge_dir)
    population = load_population(Path(args.population), taxonomy) if args.population else None
    report = campaign_report(_quiz_state(settings), args.campaign, load_bank(settings.knowledge_dir),
                             by=args.by or [], min_n=args.min_n, target=args.target, strata=args.strata or [],
                             population=population, region=args.region)
    labelled = label_report(report, taxonomy)
    print(json.dumps(report, ensure_ascii=False) if args.json else format_text(labelled))
    if args.out:
        paths = write_outputs(labelled, Path(args.out))
        print(f"已写入 {len(paths)} 个文件到 {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_responses_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import answers from CSV, all or nothing."""
    from bot.awareness.campaigns import import_responses
    from bot.quiz.bank import load_bank
    from bot.taxonomy import load_taxonomy

    count, errors = import_responses(_quiz_state(settings), args.campaign, Path(args.file),
                                     load_bank(settings.knowledge_dir), load_taxonomy(settings.knowledge_dir),
                                     layout=args.layout, link_campaigns=args.link_campaigns)
    if errors:
        for e in errors[:MAX_ERRORS_SHOWN]:
            print(e, file=sys.stderr)
        if len(errors) > MAX_ERRORS_SHOWN:
            print(f"… and {len(errors) - MAX_ERRORS_SHOWN} more", file=sys.stderr)
        return _fail(f"{len(errors)} problem(s) in {args.file}: nothing was imported", code=1)
    print(f"已导入 {count} 条作答到“{args.campaign}”。")
    return 0


def cmd_responses_erase(args: argparse.Namespace, settings: Settings) -> int:
    """One imported respondent out of one campaign: form, answers, and the profile if nothing else is left."""
    from bot.awareness.responses import erase_respondent

    erased = erase_respondent(_quiz_state(settings), args.campaign, args.respondent_id)
    print(f"已删除受访者 {args.respondent_id} 在“{args.campaign}”中的答卷（{erased} 条作答）；报告随之更新。")
    return 0


def cmd_responses_export(args: argparse.Namespace, settings: Settings) -> int:
    """csv (default, also to standard output), xlsx, sav or dta; one row per answer or per respondent."""
    from bot.awareness.campaigns import item_infos
    from bot.awareness.exports import export
    from bot.quiz.bank import load_bank
    from bot.taxonomy import load_taxonomy

    state = _quiz_state(settings)
    fmt = args.format or (Path(args.out).suffix.lower().lstrip(".") if args.out else "csv")
    fmt = fmt if fmt in ("csv", "xlsx", "sav", "dta") else "csv"
    if not args.out:
        if fmt != "csv":
            return _fail(f"--format {fmt} writes a file: give --out FILE")
        export(state, args.campaign, "csv", args.level, sys.stdout, region=args.region)
        return 0
    infos = item_infos(load_bank(settings.knowledge_dir)) if fmt in ("sav", "dta") else None
    taxonomy = load_taxonomy(settings.knowledge_dir) if fmt in ("sav", "dta") else None
    try:
        count = export(state, args.campaign, fmt, args.level, Path(args.out), infos, taxonomy, region=args.region)
    except OSError as exc:  # e.g. the disk filled up while writing (ENOSPC): name the file
        if exc.filename is None:
            exc.filename = args.out
        raise
    what = "条作答" if args.level == "item" else "名受访者"
    print(f"已导出 {count} {what}到 {args.out}（{fmt}）", file=sys.stderr)
    return 0


# ---- web console accounts (bot/storage/staff.py) -------------------------------------------------
def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input with --password-stdin, else asked twice (hidden)."""
    from getpass import getpass

    from bot.errors import InputError
    from bot.storage.staff import check_password

    if args.password_stdin:
        return check_password(sys.stdin.readline().rstrip("\r\n"))
    first = check_password(getpass("新密码："))
    if getpass("再输入一次：") != first:
        raise InputError("the two passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    """A console account (admin, analyst or reviewer; an analyst optionally limited to a region)."""
    from bot.storage.staff import check_name, open_staff

    check_name(args.name)
    store = open_staff(settings)
    account = store.add(args.name, args.role, _read_password(args), region=args.region)
    store.audit("cli", "user_add", account.name, f"role={account.role}"
                + (f" region={account.region}" if account.region else ""))
    print(f"已创建控制台账户 {account.name}（{account.role_label}"
          + (f"，地区 {account.region}" if account.region else "") + "）。")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every console account: name, role, region, whether disabled (never a password or hash)."""
    from bot.storage.staff import open_staff

    accounts = open_staff(settings).accounts()
    if args.json:
        print(json.dumps([{"name": a.name, "role": a.role, "region": a.region, "disabled": a.disabled}
                          for a in accounts], ensure_ascii=False))
        return 0
    if not accounts:
        print("还没有控制台账户（ohbot users add NAME --role admin，或首次 make run 时自动创建 admin）。")
    for a in accounts:
        print(f"{a.name}  {a.role}（{a.role_label}）  {a.region or '全部地区'}" + ("  已停用" if a.disabled else ""))
    return 0


def cmd_users_password(args: argparse.Namespace, settings: Settings) -> int:
    """A new password for an account (e.g. a forgotten one); its sessions end."""
    from bot.storage.staff import open_staff

    store = open_staff(settings)
    store.set_password(args.name, _read_password(args))
    store.audit("cli", "password_reset", args.name)
    print(f"已为 {args.name} 设置新密码。")
    return 0


# ---- the state database: migrations and moving it between backends (bot/storage/) ----------------
def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the migrations (creating, or adopting a pre-migration SQLite file); one line on what was done."""
    from bot.storage.db import make_engine, redact
    from bot.storage.migrate import upgrade

    engine = make_engine(settings.state_url)
    print(upgrade(engine).as_text(redact(engine.url)))
    return 0


def cmd_db_current(args: argparse.Namespace, settings: Settings) -> int:
    """The database's revision; exit 2 with what to run when it is not the newest (deploy scripts)."""
    from bot.storage.db import make_engine, redact
    from bot.storage.migrate import check_schema

    engine = make_engine(settings.state_url)
    print(f"{redact(engine.url)}: revision {check_schema(engine)} (the newest)")
    return 0


def _print_copy(counts: dict[str, int], source: str, target: str) -> None:
    print(f"copied {sum(counts.values())} rows from {source} to {target} (counts verified): "
          + ", ".join(f"{name} {n}" for name, n in counts.items()))


def cmd_db_copy(args: argparse.Namespace, settings: Settings) -> int:
    """Copy one state database into another, empty one (any backend to any): all or nothing."""
    from bot.storage.copy import copy_database
    from bot.storage.db import make_engine, redact

    source, target = make_engine(args.source), make_engine(args.target)
    _print_copy(copy_database(source, target), redact(source.url), redact(target.url))
    return 0


def cmd_db_export(args: argparse.Namespace, settings: Settings) -> int:
    """The state database (e.g. PostgreSQL) into a new SQLite file: a snapshot to keep or move."""
    from bot.errors import InputError
    from bot.storage.copy import copy_database
    from bot.storage.db import make_engine, redact

    path = Path(args.file)
    if path.exists():
        raise InputError(f"{path} exists already: export writes a new file")
    source = make_engine(settings.state_url)
    try:
        counts = copy_database(source, make_engine(f"sqlite:///{path}"))
    except BaseException:
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    _print_copy(counts, redact(source.url), str(path))
    return 0


def cmd_db_import(args: argparse.Namespace, settings: Settings) -> int:
    """A SQLite state file (a pilot's DATA_DIR/ohbot.db) into the configured, empty state database."""
    from bot.errors import InputError
    from bot.storage.copy import copy_database
    from bot.storage.db import make_engine, redact

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"no SQLite file {path}")
    target = make_engine(settings.state_url)
    _print_copy(copy_database(make_engine(f"sqlite:///{path}"), target), str(path), redact(target.url))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ohbot` and every subcommand."""
    parser = argparse.ArgumentParser(prog="ohbot", description="职业健康 education bot and knowledge base")
    parser.add_argument("--data-dir", help="where the index and database live (env OHBOT_DATA_DIR, default ./data)")
    parser.add_argument("--knowledge-dir", help="source documents (env OHBOT_KNOWLEDGE_DIR, default ./knowledge)")
    parser.add_argument("--model", help="sentence-transformers model name or path (env OHBOT_EMBEDDING_MODEL)")
    parser.add_argument("--backend", choices=["onnx", "torch"], help="embedding backend (env OHBOT_EMBEDDING_BACKEND)")
    parser.add_argument("--database-url", help="state database: sqlite:///FILE or postgresql://… "
                        "(env OHBOT_DATABASE_URL, default sqlite:///DATA_DIR/ohbot.db)")
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

    p = sub.add_parser("eval", help="measure retrieval or answers on a JSONL question set")
    p.add_argument("what", choices=["retrieval", "answers"],
                   help="retrieval: hit@k and MRR per method; answers: correct / wrong / refused / referral per question")
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
    sub.add_parser("quiz", help="take the quiz in this terminal").set_defaults(func=cmd_quiz)
    p = sub.add_parser("telegram", help="run the Telegram bot (TELEGRAM_BOT_TOKEN)")
    p.add_argument("--webhook-url", help="webhook mode at this public URL (default: long polling)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDRESS",
                   help=f"address the webhook server binds (default {DEFAULT_LISTEN}: behind a TLS proxy on this host)")
    p.add_argument("--port", type=int, default=8443, help="local port for webhook mode")
    p.set_defaults(func=cmd_telegram)
    sub.add_parser("start", help="the main job (make run): the web service with the console on 127.0.0.1:8000, "
                   "Telegram long polling with a token").set_defaults(func=cmd_start)
    users = sub.add_parser("users", help="web console accounts").add_subparsers(dest="users_command", metavar="COMMAND")
    p = users.add_parser("add", help="a console account (the password is asked, or read with --password-stdin)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["admin", "analyst", "reviewer"],
                   help="admin: everything and accounts; analyst: reports, exports, imports; "
                        "reviewer: gaps, feedback and FAQ drafts, no exports")
    p.add_argument("--region", help="an analyst sees only this region's respondents")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of standard input")
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("list", help="every console account with its role and region")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("password", help="set a new password for an account (its sessions end)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of standard input")
    p.set_defaults(func=cmd_users_password)
    p = sub.add_parser("serve", help="the web service: /, /console/, /wechat, /wecom, /telegram and /healthz in one process")
    p.add_argument("--listen", "--host", dest="listen", default=DEFAULT_LISTEN, metavar="ADDRESS",
                   help=f"address to bind (default {DEFAULT_LISTEN}; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.set_defaults(func=cmd_serve)
    wechat = sub.add_parser("wechat", help="the WeChat Official Account").add_subparsers(
        dest="wechat_command", metavar="COMMAND")
    wechat.add_parser("menu", help="create the custom menu (问答 · 测验 · 更多)").set_defaults(func=cmd_wechat_menu)
    bank = sub.add_parser("bank", help="the quiz bank").add_subparsers(dest="bank_command", metavar="COMMAND")
    p = bank.add_parser("list", help="every item of the quiz bank")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bank_list)
    p = sub.add_parser("gaps", help="refused questions and 👎 answers, most frequent first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gaps)
    campaign = sub.add_parser("campaign", help="quiz campaigns").add_subparsers(dest="campaign_command", metavar="COMMAND")
    p = campaign.add_parser("create", help="a new quiz campaign")
    p.add_argument("name")
    p.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--region", help="only users in this region (default: everybody)")
    p.add_argument("--threshold", type=float, default=AWARE_THRESHOLD,
                   help=f"score rate that counts as aware (default {AWARE_THRESHOLD})")
    p.add_argument("--form-size", type=int, default=FORM_SIZE, help=f"items per form (default {FORM_SIZE})")
    p.set_defaults(func=cmd_campaign_create)
    p = campaign.add_parser("list", help="every campaign with its number of completed forms")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_campaign_list)
    p = campaign.add_parser("close", help="end a campaign (no new counted forms)")
    p.add_argument("name")
    p.set_defaults(func=cmd_campaign_close)
    p = sub.add_parser("report", help="awareness rate (知晓率) of a campaign, overall and by group")
    p.add_argument("--campaign", required=True)
    p.add_argument("--by", action="append", choices=GROUP_KEYS, help="group by this field (repeat to cross)")
    p.add_argument("--json", action="store_true", help="the report as JSON (taxonomy codes, not labels)")
    p.add_argument("--out", help="also write CSV, XLSX, PNG and HTML files into this folder")
    p.add_argument("--min-n", type=int, default=MIN_GROUP_N,
                   help=f"smaller groups are listed but not ranked (default {MIN_GROUP_N})")
    p.add_argument("--target", type=float, default=AWARENESS_TARGET,
                   help=f"target awareness rate (default {AWARENESS_TARGET})")
    p.add_argument("--strata", action="append", choices=PROFILE_KEYS,
                   help="the sample was stratified by this field (repeat to cross); design-based intervals")
    p.add_argument("--population", metavar="FILE.csv",
                   help="workers per industry × enterprise_size × region (columns ...,count): weighted rates")
    p.add_argument("--region", help="only respondents whose profile region is this one (as a console analyst of it)")
    p.set_defaults(func=cmd_report)
    responses = sub.add_parser("responses", help="quiz answers in and out as CSV").add_subparsers(
        dest="responses_command", metavar="COMMAND")
    p = responses.add_parser("import", help="import answers (respondent_id,item_id,answer,answered_at,...): all or nothing")
    p.add_argument("file")
    p.add_argument("--campaign", required=True)
    p.add_argument("--layout", choices=["long", "wide"], default="long",
                   help="long: one row per answer (default); wide: one row per respondent, one column per item id")
    p.add_argument("--link-campaigns", action="store_true",
                   help="respondent ids name the same person in every campaign (default: each campaign's own ids)")
    p.set_defaults(func=cmd_responses_import)
    p = responses.add_parser("erase", help="delete one imported respondent's form and answers from a campaign")
    p.add_argument("respondent_id", help="the respondent_id as in the imported file")
    p.add_argument("--campaign", required=True)
    p.set_defaults(func=cmd_responses_erase)
    p = responses.add_parser("export", help="the counted answers of a campaign (salted respondent keys)")
    p.add_argument("--campaign", required=True)
    p.add_argument("--out", help="file to write (default: standard output, csv only)")
    p.add_argument("--format", choices=["csv", "xlsx", "sav", "dta"],
                   help="csv (default), xlsx, sav (SPSS) or dta (Stata, with variable and value labels)")
    p.add_argument("--level", choices=["item", "respondent"], default="item",
                   help="item: one row per answer (default; csv re-imports); respondent: one row per respondent "
                        "with score, aware and each item right/wrong")
    p.add_argument("--region", help="only respondents whose profile region is this one")
    p.set_defaults(func=cmd_responses_export)
    db = sub.add_parser("db", help="the state database: migrations, moving it to PostgreSQL").add_subparsers(
        dest="db_command", metavar="COMMAND")
    db.add_parser("upgrade", help="apply the schema migrations (adopts a database made before them)").set_defaults(
        func=cmd_db_upgrade)
    db.add_parser("current", help="the database's schema revision; fails when it is behind").set_defaults(
        func=cmd_db_current)
    p = db.add_parser("copy", help="copy one state database into another, empty one: all or nothing")
    p.add_argument("--from", dest="source", required=True, metavar="URL", help="sqlite:///FILE or postgresql://…")
    p.add_argument("--to", dest="target", required=True, metavar="URL", help="an empty database (migrated first)")
    p.set_defaults(func=cmd_db_copy)
    p = db.add_parser("export", help="the state database into a new SQLite FILE")
    p.add_argument("file")
    p.set_defaults(func=cmd_db_export)
    p = db.add_parser("import", help="a SQLite FILE (a pilot's ohbot.db) into the state database, which must be empty")
    p.add_argument("file")
    p.set_defaults(func=cmd_db_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `ohbot` command; user errors print one line and exit with status 2."""
    for stream in (sys.stdout, sys.stderr):  # Chinese text even under a C/POSIX locale (ASCII)
        if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower().replace("-", "") != "utf8":
            stream.reconfigure(encoding="utf-8")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from bot.channels import redact

    settings: Settings | None = None
    try:
        settings = _settings(args)
        for secret in settings.secrets():  # masked in any message or traceback printed below
            redact.remember(secret)
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except OhbotError as exc:  # a user error: its one-line message; anything else is a bug (traceback)
        cause = exc.__cause__  # a SQLite file that cannot be opened (damaged): say what to do
        explained = _storage_failure(cause, settings) if isinstance(exc, DatabaseUnavailable) and cause else None
        return _fail(redact.redact(explained or str(exc)))
    except OSError as exc:  # a file that cannot be read or written: name it
        message = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
        if exc.errno == errno.ENOSPC:
            message += " (the disk is full: free some space, then run the command again)"
        return _fail(redact.redact(message))
    except Exception as exc:
        explained = _storage_failure(exc, settings)
        if explained is None:  # a bug: its traceback, with every configured secret masked
            print(redact.redact(traceback.format_exc()), end="", file=sys.stderr)
            return 1
        return _fail(explained)


def _storage_failure(exc: BaseException, settings: Settings | None) -> str | None:
    """One line for a state database on a full disk or damaged, naming the file and the fix; None
    for any other error. sqlite3's errors and SQLAlchemy's wrapping of them (`.orig`) alike."""
    import sqlite3

    from sqlalchemy import exc as sa_exc

    if not isinstance(exc, sqlite3.DatabaseError | sa_exc.DBAPIError):
        return None
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    where = "the state database"
    if settings is not None:
        from bot.storage.db import redact

        url = settings.state_url
        where = str(settings.state_db) if url.startswith("sqlite:") else redact(url)
    lowered = reason.lower()
    if "disk is full" in lowered or "no space left" in lowered:
        return (f"{where}: the disk is full ({reason}); nothing of this command was saved: free some space, "
                "then run it again")
    if "not a database" in lowered or "malformed" in lowered or "disk i/o error" in lowered:
        return (f"{where} is damaged ({reason}): stop the bot, move the file aside and restore it from a "
                "backup (or start an empty one; `ohbot db upgrade` creates it)")
    return None


if __name__ == "__main__":
    sys.exit(main())
