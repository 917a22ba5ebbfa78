"""Start-up, memory and first-build benchmark (issue #16), before and after, in one run.

    .venv/bin/python benchmarks/startup_bench.py [--before REF] [--runs 5] [--questions 200] [--skip-build]

"Before" is the code of git REF (default: BASELINE, main just before the lean runtime), unpacked
with `git archive` into a temporary folder; "after" is this working tree. Both run as child
processes (`python -m bot.cli`, PYTHONPATH pointing at their code) on the same knowledge folder,
alternating, so load on the machine hits both alike. CPU time (user + system of the process tree)
is shown beside wall time: on a busy machine it is the steadier figure. Prints, for each:

- first build on a fresh data directory: wall time and peak RSS of the whole process tree (the
  build and any export child, sampled every 20 ms); for "after" twice: with nothing cached on the
  machine (an empty HOME: the model is exported) and with the machine's export cache warm;
- `ohbot ask "…"` cold, index built: wall time to the answer (median and best of --runs);
- a serving process after --questions warm-up questions: RSS, and answer latency p50/p95 over the
  same questions again, model warm, with the query-vector cache emptied first (every question
  encoded: what a new question costs) and, apart, with it full;
- which of torch / sentence_transformers / faiss / bm25s the serving process imported.
Nothing is written outside a temporary directory, which is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "99c96a6"  # main just before the lean runtime (issue #16)
QUESTION = "噪声多大算超标"
TARGETS = {"build_s": 30.0, "build_peak_mb": 1024.0, "ask_cold_s": 2.0, "serving_rss_mb": 300.0, "p95_ms": 20.0}

SERVE = r"""
import json, sys, time, statistics
questions = json.loads(sys.argv[2])
from bot.config import load_settings
from bot.answering.retrieve import open_retriever
from bot.answering.answer import answer
started = time.perf_counter()
retriever = open_retriever(load_settings(sys.argv[1]))
load_s = time.perf_counter() - started
for q in questions:
    answer(retriever, q)
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
def timed():
    times = []
    for q in questions:
        t = time.perf_counter()
        answer(retriever, q)
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)
cached = timed()  # the same questions again: their query vectors are in the retriever's cache
retriever.query_cache.clear()
times = timed()  # model warm, every question encoded again
print(json.dumps({"load_s": load_s, "rss_mb": rss, "p50_ms": statistics.median(times),
                  "p95_ms": times[int(0.95 * len(times)) - 1], "cached_p50_ms": statistics.median(cached),
                  "cached_p95_ms": cached[int(0.95 * len(cached)) - 1],
                  "imported": sorted(m for m in ("torch", "sentence_transformers", "faiss", "bm25s", "scipy")
                                     if m in sys.modules)}))
"""


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(sum, largest) RSS in MB of process `pid` and all its descendants, from /proc."""
    total, largest, stack = 0.0, 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                rss = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS")), 0.0)
            with open(f"/proc/{p}/task/{p}/children") as f:
                stack += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def run(cmd: list[str], src: Path, env_extra: dict | None = None, sample: bool = False) -> dict:
    """Run `cmd` with the code of `src`; wall time, output, and (sample=True) peak tree RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OHBOT_")}
    env.update({"PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}, **(env_extra or {}))
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sum = peak_one = 0.0
    if sample:
        while proc.poll() is None:
            total, largest = tree_rss_mb(proc.pid)
            peak_sum, peak_one = max(peak_sum, total), max(peak_one, largest)
            time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak_sum, "peak_one_mb": peak_one, "stdout": out, "stderr": err}


def load_questions(n: int) -> list[str]:
    """n questions cycled from the eval sets of this tree."""
    questions = []
    for path in sorted((REPO / "tests" / "eval").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                questions.append(item.get("q") or item.get("question"))
    questions = [q for q in questions if q][:400]
    return (questions * (n // len(questions) + 1))[:n]


def main(argv: list[str] | None = None) -> int:
    """Measure both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BASELINE, help=f"git ref of the code to compare with (default {BASELINE})")
    parser.add_argument("--runs", type=int, default=5, help="cold `ohbot ask` runs per side")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ohbot-startup-"))
    try:
        before = work / "before-src"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        sides = {"before": before, "after": REPO}
        knowledge = str(REPO / "knowledge")
        py = sys.executable
        figures: dict[str, dict] = {s: {} for s in sides}
        home = work / "home"  # the "after" machine cache lives here, not in the real ~/.cache
        home.mkdir()

        def build(side: str, data: Path, label: str, env: dict | None = None) -> None:
            """One `build-index` of `side` into the fresh data directory `data`, recorded under `label`."""
            r = run([py, "-m", "bot.cli", "--data-dir", str(data), "--knowledge-dir", knowledge, "build-index"],
                    sides[side], env, sample=True)
            figures[side][label] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_mb": r["peak_mb"],
                                    "peak_one_mb": r["peak_one_mb"], "stderr_lines": len(r["stderr"].splitlines())}
            print(f"  {side} {label}: {r['wall_s']:.1f} s ({r['cpu_s']:.1f} s CPU), peak {r['peak_mb']:.0f} MB",
                  file=sys.stderr, flush=True)

        print("first builds …", file=sys.stderr, flush=True)
        build("before", work / "data-before", "build_fresh")
        build("after", work / "data-after-cold", "build_nothing_cached", {"HOME": str(home)})
        build("after", work / "data-after", "build_fresh", {"HOME": str(home)})
        data = {"before": work / "data-before", "after": work / "data-after"}

        print("cold asks …", file=sys.stderr, flush=True)
        asks: dict[str, list[float]] = {s: [] for s in sides}
        cpus: dict[str, list[float]] = {s: [] for s in sides}
        for _ in range(args.runs):
            for side in sides:
                r = run([py, "-m", "bot.cli", "--data-dir", str(data[side]), "ask", QUESTION], sides[side],
                        {"HOME": str(home)})
                asks[side].append(r["wall_s"])
                cpus[side].append(r["cpu_s"])
        for side in sides:
            figures[side]["ask_cold"] = {"median_s": statistics.median(asks[side]), "best_s": min(asks[side]),
                                         "cpu_s": statistics.median(cpus[side])}

        print("serving …", file=sys.stderr, flush=True)
        questions = json.dumps(load_questions(args.questions), ensure_ascii=False)
        for side in sides:
            r = run([py, "-c", SERVE, str(data[side]), questions], sides[side], {"HOME": str(home)})
            figures[side]["serving"] = json.loads(r["stdout"].strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        return 0
    b, a = figures["before"], figures["after"]
    rows = [
        ("first build, fresh data dir: wall", f"{b['build_fresh']['wall_s']:.1f} s",
         f"{a['build_fresh']['wall_s']:.1f} s", f"≤ {TARGETS['build_s']:.0f} s"),
        ("first build, fresh data dir: CPU time (user+sys)", f"{b['build_fresh']['cpu_s']:.1f} s",
         f"{a['build_fresh']['cpu_s']:.1f} s", ""),
        ("first build, fresh data dir: peak RSS (tree)", f"{b['build_fresh']['peak_mb']:.0f} MB",
         f"{a['build_fresh']['peak_mb']:.0f} MB", f"≤ {TARGETS['build_peak_mb']:.0f} MB"),
        ("first build, nothing cached (export): wall", "(as above)",
         f"{a['build_nothing_cached']['wall_s']:.1f} s", ""),
        ("first build, nothing cached: CPU time", "(as above)", f"{a['build_nothing_cached']['cpu_s']:.1f} s", ""),
        ("first build, nothing cached: peak RSS (tree)", "(as above)",
         f"{a['build_nothing_cached']['peak_mb']:.0f} MB (largest process "
         f"{a['build_nothing_cached']['peak_one_mb']:.0f})", ""),
        ("build: lines on stderr", str(b["build_fresh"]["stderr_lines"]), str(a["build_fresh"]["stderr_lines"]), "0"),
        (f"`ohbot ask` cold: median of {args.runs}", f"{b['ask_cold']['median_s']:.2f} s",
         f"{a['ask_cold']['median_s']:.2f} s", f"≤ {TARGETS['ask_cold_s']:.0f} s"),
        ("`ohbot ask` cold: best", f"{b['ask_cold']['best_s']:.2f} s", f"{a['ask_cold']['best_s']:.2f} s", ""),
        ("`ohbot ask` cold: CPU time (median)", f"{b['ask_cold']['cpu_s']:.2f} s", f"{a['ask_cold']['cpu_s']:.2f} s", ""),
        ("serving: index + model load", f"{b['serving']['load_s']:.2f} s", f"{a['serving']['load_s']:.2f} s", ""),
        (f"serving RSS after {args.questions} questions", f"{b['serving']['rss_mb']:.0f} MB",
         f"{a['serving']['rss_mb']:.0f} MB", f"≤ {TARGETS['serving_rss_mb']:.0f} MB"),
        ("answer p50, model warm (query encoded)", f"{b['serving']['p50_ms']:.1f} ms",
         f"{a['serving']['p50_ms']:.1f} ms", ""),
        ("answer p95, model warm (query encoded)", f"{b['serving']['p95_ms']:.1f} ms",
         f"{a['serving']['p95_ms']:.1f} ms", f"≤ {TARGETS['p95_ms']:.0f} ms"),
        ("answer p50 / p95, query vector cached",
         f"{b['serving']['cached_p50_ms']:.1f} / {b['serving']['cached_p95_ms']:.1f} ms",
         f"{a['serving']['cached_p50_ms']:.1f} / {a['serving']['cached_p95_ms']:.1f} ms", ""),
        ("serving imported", ", ".join(b["serving"]["imported"]) or "none",
         ", ".join(a["serving"]["imported"]) or "none", "none of torch, sentence_transformers"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'before (' + args.before + ')':>24}  {'after':>24}  target")
    for name, before_v, after_v, target in rows:
        print(f"{name:{width}}  {before_v:>24}  {after_v:>24}  {target}")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
