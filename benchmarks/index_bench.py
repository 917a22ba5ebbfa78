"""Knowledge-index benchmark: build speed, incremental rebuild, search latency, peak memory.

    .venv/bin/python benchmarks/index_bench.py [--knowledge-dir knowledge] [--queries 200] [--json]

Prints:
- model load time (including the one-time local ONNX export into a temporary data directory);
- full build time of knowledge/ and chunks per second;
- incremental rebuild time after editing one material (in a copy of knowledge/), and after no change;
- search latency p50/p95 over N queries (the eval question files, cycled) after a warm-up,
  for the fused ranking and for BM25 and dense alone;
- peak RSS of the process (resource.getrusage).
Nothing is written outside a temporary directory, which is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EVAL_FILES = [
    REPO.parent / "shared" / "eval" / "dev-questions.jsonl",
    *sorted((REPO / "tests" / "eval").glob("*.jsonl")),
]


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def load_questions() -> list[str]:
    questions = []
    for path in EVAL_FILES:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    questions.append(json.loads(line)["q"])
    if not questions:
        raise SystemExit("no eval question files found (tests/eval/*.jsonl, ../shared/eval/dev-questions.jsonl)")
    return questions


def edit_one_material(knowledge: Path) -> Path:
    """Append a sentence to the first body paragraph of one material: one changed chunk."""
    materials = sorted((knowledge / "materials").glob("*.md"))
    path = next((p for p in materials if p.name == "hazard-noise.md"), materials[0])
    lines = path.read_text(encoding="utf-8").splitlines()
    in_front_matter = lines[0].strip() == "---"
    for i, line in enumerate(lines[1:] if in_front_matter else lines, 1 if in_front_matter else 0):
        if in_front_matter:
            if line.strip() == "---":
                in_front_matter = False
            continue
        if line.strip() and not line.lstrip().startswith(("#", "|", "-", ">")):
            lines[i] = line + "（本句为基准测试所加。）"
            break
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(knowledge: Path, model: str, backend: str, n_queries: int, warmup: int) -> dict:
    from bot.answering.retrieve import Retriever
    from bot.index.encoder import load_encoder
    from index_builder.build import build_index

    figures: dict = {}
    work = Path(tempfile.mkdtemp(prefix="ohbot-bench-"))
    try:
        data = work / "data"
        started = time.perf_counter()
        encoder = load_encoder(model, backend, cache_dir=data / "models")
        figures["model_load_s"] = time.perf_counter() - started

        started = time.perf_counter()
        full = build_index(knowledge, data / "index", model, backend, full=True, encoder=encoder)
        seconds = time.perf_counter() - started
        figures["full_build"] = {
            "seconds": seconds, "documents": full.documents, "faq_cards": full.faq_cards, "chunks": full.chunks,
            "chunks_per_s": full.chunks / seconds, "errors": len(full.errors),
        }

        copy = work / "knowledge"
        shutil.copytree(knowledge, copy)
        shutil.copytree(data / "index", work / "data2" / "index")
        started = time.perf_counter()
        same = build_index(copy, work / "data2" / "index", model, backend, encoder=encoder)
        figures["rebuild_unchanged"] = {"seconds": time.perf_counter() - started, "embedded": same.embedded,
                                        "reused": same.reused}
        edited = edit_one_material(copy)
        started = time.perf_counter()
        incremental = build_index(copy, work / "data2" / "index", model, backend, encoder=encoder)
        figures["rebuild_one_material_edited"] = {
            "seconds": time.perf_counter() - started, "edited": edited.name, "embedded": incremental.embedded,
            "reused": incremental.reused, "removed_chunks": incremental.removed_chunks,
        }

        started = time.perf_counter()
        retriever = Retriever(data / "index", model, backend, encoder=encoder)
        figures["index_load_s"] = time.perf_counter() - started
        questions = load_questions()
        figures["search"] = {"queries": n_queries, "distinct_questions": len(set(questions)), "warmup": warmup}
        for method in ("hybrid", "bm25", "dense"):
            for q in questions[:warmup]:
                retriever.search(q, top_k=5, method=method)
            times = []
            for i in range(n_queries):
                q = questions[i % len(questions)]
                started = time.perf_counter()
                retriever.search(q, top_k=5, method=method)
                times.append((time.perf_counter() - started) * 1000)
            figures["search"][method] = {
                "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "max_ms": max(times),
                "mean_ms": statistics.fmean(times),
            }
        figures["peak_rss_mb"] = peak_rss_mb()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def show(f: dict) -> str:
    b, u, e, s = f["full_build"], f["rebuild_unchanged"], f["rebuild_one_material_edited"], f["search"]
    lines = [
        f"model load (incl. one-time ONNX int8 export): {f['model_load_s']:.1f} s",
        f"full build: {b['seconds']:.1f} s for {b['documents']} documents + {b['faq_cards']} FAQ cards = "
        f"{b['chunks']} chunks ({b['chunks_per_s']:.1f} chunks/s, errors {b['errors']})",
        f"rebuild, nothing changed: {u['seconds']:.2f} s (embedded {u['embedded']}, reused {u['reused']})",
        f"rebuild after editing {e['edited']}: {e['seconds']:.2f} s (embedded {e['embedded']}, reused {e['reused']}, "
        f"removed {e['removed_chunks']})",
        f"index load: {f['index_load_s']:.2f} s",
        f"search latency over {s['queries']} queries ({s['distinct_questions']} distinct eval questions, "
        f"after {s['warmup']} warm-up), top-5:",
    ]
    for method in ("hybrid", "bm25", "dense"):
        m = s[method]
        lines.append(f"  {method:<6} p50 {m['p50_ms']:6.1f} ms   p95 {m['p95_ms']:6.1f} ms   "
                     f"max {m['max_ms']:6.1f} ms   mean {m['mean_ms']:6.1f} ms")
    lines.append(f"peak RSS: {f['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--knowledge-dir", type=Path, default=REPO / "knowledge")
    parser.add_argument("--model", default=os.environ.get("OHBOT_EMBEDDING_MODEL", "m3e-small"))
    parser.add_argument("--backend", default=os.environ.get("OHBOT_EMBEDDING_BACKEND", "onnx"),
                        choices=["onnx", "torch"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.INFO)  # bm25s logs every index build at DEBUG/INFO
    figures = run(args.knowledge_dir.resolve(), args.model, args.backend, args.queries, args.warmup)
    print(json.dumps(figures, ensure_ascii=False, indent=1) if args.json else show(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
