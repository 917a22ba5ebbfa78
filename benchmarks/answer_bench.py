"""Answer latency of the answering engine (what `ohbot ask --json -` runs per line), model load excluded.

Usage: .venv/bin/python benchmarks/answer_bench.py [--data-dir DIR]   (builds the index if missing)
Prints p50/p95 over 200 questions (every question set's questions in file order, the real-question
sets' long ones included) after a warm-up, and the answer rate / refusal rate.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answering.answer import answer  # noqa: E402
from bot.answering.evaluate_answers import load_items  # noqa: E402
from bot.answering.retrieve import open_retriever  # noqa: E402
from bot.config import load_settings  # noqa: E402


def main() -> None:
    """Load the index and model, warm up, time 200 answers, print the percentiles."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    settings = load_settings(args.data_dir)
    started = time.perf_counter()
    retriever = open_retriever(settings, build_if_missing=True)
    print(f"index + model load: {time.perf_counter() - started:.2f} s")
    files = sorted((ROOT / "tests" / "eval").glob("*.jsonl"))
    questions = [item.question for f in files for item in load_items(f)]
    questions = (questions * (200 // len(questions) + 1))[:200]
    for q in questions[:20]:
        answer(retriever, q)
    times, found = [], 0
    for q in questions:
        t = time.perf_counter()
        found += answer(retriever, q).found
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"questions: {len(times)}  answered: {found}  refused: {len(times) - found}")
    print(f"answer latency p50 {statistics.median(times):.1f} ms  p95 {times[int(0.95 * len(times)) - 1]:.1f} ms  max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
