"""`ohbot eval retrieval`: hit@1, hit@5 and MRR@10 per question kind for BM25, dense and fused.

A hit is a returned passage that contains every string of one gold group, both normalised.
Out-of-domain items (`kind: ood`, no gold) are skipped here: refusing them is the answerer's job.
Real-question rows (tests/eval/README-real.md: `question`, `scope`, `must`) are read too: their
in-scope rows' `must` groups are the gold, out-of-scope rows are skipped like `ood`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from bot.answering.retrieve import Retriever
from bot.errors import InputError
from bot.text.normalize import normalize

METHODS = ("bm25", "dense", "hybrid")


def load_questions(path: Path) -> list[dict]:
    questions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if "question" in item and "scope" in item:  # a real-question row
            item = {"id": item.get("id"), "q": item["question"], "kind": item.get("kind", "?"),
                    "gold": item.get("must") or [] if item["scope"] == "oh" else []}
        if "q" not in item or "gold" not in item:
            raise InputError(f"{path}:{n}: needs fields 'q' and 'gold' (or 'question', 'scope' and 'must')")
        questions.append(item)
    return questions


def is_hit(text: str, gold: list[list[str]]) -> bool:
    norm = normalize(text)
    return any(group and all(normalize(s) in norm for s in group) for group in gold)


def first_hit_rank(texts: list[str], gold: list[list[str]]) -> int | None:
    return next((rank for rank, text in enumerate(texts, 1) if is_hit(text, gold)), None)


def passage_text(p) -> str:
    """What a hit is judged on: the passage as shown, with its heading path."""
    return f"{p.chunk.heading}\n{p.chunk.text}"


def evaluate(retriever: Retriever, questions: list[dict]) -> dict:
    """{method: {kind: {"n", "hit@1", "hit@5", "mrr@10"}}}, with an "all" kind."""
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    misses: dict = defaultdict(list)
    for item in questions:
        if not item.get("gold"):
            continue
        for method in METHODS:
            texts = [passage_text(p) for p in retriever.search(item["q"], top_k=10, method=method)]
            rank = first_hit_rank(texts, item["gold"])
            for kind in (item.get("kind", "?"), "all"):
                cell = sums[method][kind]
                cell["n"] += 1
                cell["hit@1"] += rank == 1
                cell["hit@5"] += rank is not None and rank <= 5
                cell["mrr@10"] += 1.0 / rank if rank else 0.0
            if method == "hybrid" and (rank is None or rank > 1):
                misses[method].append({"id": item.get("id"), "q": item["q"], "rank": rank})
    result = {
        method: {
            kind: {"n": int(c["n"]), **{k: round(c[k] / c["n"], 4) for k in ("hit@1", "hit@5", "mrr@10")}}
            for kind, c in sorted(kinds.items())
        }
        for method, kinds in sums.items()
    }
    result["misses"] = misses["hybrid"]
    return result


def format_table(result: dict) -> str:
    lines = [f"{'method':<8} {'kind':<10} {'n':>4} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7}"]
    for method in METHODS:
        for kind, c in result.get(method, {}).items():
            lines.append(f"{method:<8} {kind:<10} {c['n']:>4} {c['hit@1']:>6.3f} {c['hit@5']:>6.3f} {c['mrr@10']:>7.3f}")
    if result.get("misses"):
        lines.append("fused ranking, not at rank 1:")
        lines += [f"  {m['id']}: rank {m['rank'] or '>10'}  {m['q']}" for m in result["misses"]]
    return "\n".join(lines)
