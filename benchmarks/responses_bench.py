"""Responses in and out at scale: `ohbot responses import` and `export` of 10^6 answer rows.

Usage: .venv/bin/python benchmarks/responses_bench.py [--respondents 50000] [--items 20] [--formats csv,...]
Works in a temporary data directory (no index, no model). Each command runs in its own process, so
its wall time and its peak resident memory (RSS, from wait4) are its own.
Targets (issue #11): import and export of 10^6 rows each ≤ 30 s and ≤ 300 MB peak RSS.
The designed report (enterprises as clusters) and the other export forms (respondent level, XLSX, SPSS,
Stata) are measured and printed, without a target.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_responses  # noqa: E402
from bot.quiz.bank import load_bank  # noqa: E402
from bot.taxonomy import load_taxonomy  # noqa: E402

TARGET_S = 30.0
TARGET_MB = 300.0
PER_ENTERPRISE = 25  # respondents per enterprise code


def run_cli(data_dir: Path, *argv: str) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds) of one `ohbot` command in a fresh process."""
    code = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OHBOT_SALT": "bench-salt"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, "--data-dir", str(data_dir), *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ohbot {' '.join(argv)} failed:\n{err}")
    return elapsed, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime  # ru_maxrss: KiB on Linux


def main() -> None:
    """Generate the data set, import it, export it in each asked form; print time and peak RSS of each."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--respondents", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--formats", default="csv,csv:respondent,xlsx:respondent,sav,sav:respondent,dta,"
                                             "dta:respondent",
                        help="export forms FORMAT[:LEVEL] to measure after the long CSV")
    args, _ = parser.parse_known_args()
    bank = load_bank(ROOT / "knowledge")
    taxonomy = load_taxonomy(ROOT / "knowledge")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        path = data / "answers.csv"
        t = time.perf_counter()
        rows = write_responses(path, bank, taxonomy, args.respondents, args.items, random.Random(7),
                               per_enterprise=PER_ENTERPRISE)
        print(f"data set: {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) written in {time.perf_counter() - t:.1f} s")
        run_cli(data, "campaign", "create", "bench", "--start", "2024-01-01", "--end", "2024-12-31")

        seconds, mb, cpu = run_cli(data, "responses", "import", str(path), "--campaign", "bench")
        passed = seconds <= TARGET_S and mb <= TARGET_MB
        ok &= passed
        print(f"import {rows:,} rows: {seconds:.1f} s (CPU {cpu:.1f} s), peak RSS {mb:.0f} MB  "
              f"[{'ok' if passed else 'OVER TARGET'}]")

        out = data / "export.csv"
        seconds, mb, cpu = run_cli(data, "responses", "export", "--campaign", "bench", "--out", str(out))
        with out.open(encoding="utf-8-sig") as f:
            exported = sum(1 for _ in f) - 1
        passed = seconds <= TARGET_S and mb <= TARGET_MB and exported == rows
        ok &= passed
        print(f"export {exported:,} rows (csv, item level): {seconds:.1f} s (CPU {cpu:.1f} s), peak RSS {mb:.0f} MB  "
              f"[{'ok' if passed else 'OVER TARGET'}]")

        seconds, mb, cpu = run_cli(data, "report", "--campaign", "bench", "--by", "industry", "--by", "month",
                                   "--json")
        print(f"report by industry × month with {args.respondents // PER_ENTERPRISE:,} enterprises as clusters: "
              f"{seconds:.1f} s (CPU {cpu:.1f} s), peak RSS {mb:.0f} MB")

        for form in [f for f in args.formats.split(",") if f and f != "csv"]:
            fmt, _, level = form.partition(":")
            level = level or "item"
            target = data / f"export-{level}.{fmt}"
            seconds, mb, cpu = run_cli(data, "responses", "export", "--campaign", "bench", "--format", fmt,
                                     "--level", level, "--out", str(target))
            print(f"export {fmt}, {level} level: {seconds:.1f} s (CPU {cpu:.1f} s), peak RSS {mb:.0f} MB, "
                  f"{target.stat().st_size / 1e6:.0f} MB file")
    print(f"targets (import and long-CSV export ≤ {TARGET_S:.0f} s and ≤ {TARGET_MB:.0f} MB): "
          f"{'ok' if ok else 'NOT MET'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
