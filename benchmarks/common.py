"""What several benchmark scripts need: a throw-away data dir with the index, the CPU time of a
service process, the eval questions, a free port, a synthetic answers CSV, threads released at once,
and a service waited for and stopped. One copy, so the
scripts measure the same way (not a benchmark itself: it has no `main`)."""
from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bot.answering.evaluate import load_questions

ROOT = Path(__file__).resolve().parents[1]
RESPONSES_HEADER = ["respondent_id", "item_id", "answer", "answered_at", "industry", "region",
                    "enterprise_size", "role", "sex", "age_band", "education"]


def prepare_data(source: Path, prefix: str) -> Path:
    """A throw-away data dir: a copy of the index, the exported model linked (the index is built into
    `source` first if it is missing)."""
    if not (source / "index" / "index.db").exists():
        print(f"building the index into {source} …", flush=True)
        subprocess.run([sys.executable, "-m", "bot.cli", "--data-dir", str(source), "build-index"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    target = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.copytree(source / "index", target / "index")
    if (source / "models").exists():
        (target / "models").symlink_to((source / "models").resolve(), target_is_directory=True)
    return target


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def questions() -> list[str]:
    """The in-domain questions of our own eval sets."""
    files = sorted((ROOT / "tests" / "eval").glob("materials-*.jsonl"))
    return [q["q"] for f in files for q in load_questions(f)]


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_responses(path: Path, bank: list, taxonomy: dict, respondents: int, items: int, rng: random.Random,
                    per_enterprise: int | None = None) -> int:
    """A long-layout CSV of `respondents` × `items` answers, abilities spread so awareness is near
    85 %; with `per_enterprise`, an `enterprise` column codes that many respondents per enterprise.
    Written row by row (the generator never holds the data set); returns the row count."""
    industries = list(taxonomy["industries"])
    sizes = list(taxonomy["enterprise_sizes"])
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(RESPONSES_HEADER + (["enterprise"] if per_enterprise else []))
        for r in range(respondents):
            ability = min(0.99, max(0.3, rng.gauss(0.86, 0.08)))
            profile = [rng.choice(industries), rng.choice(["柳南区", "柳北区", "城中区"]), rng.choice(sizes),
                       "worker", rng.choice(["男", "女"]), rng.choice(["16-24", "25-34", "35-44", "45-59"]), "senior"]
            if per_enterprise:
                profile.append(f"E{r // per_enterprise:05d}")
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            for k, item in enumerate(rng.sample(bank, items)):
                if rng.random() < ability:
                    answer = item.answer
                else:
                    answer = item.answer[0] if item.type == "multiple" else \
                        next(o for o in item.options if o != item.answer)
                w.writerow([f"R{r:06d}", item.id, answer, f"2024-{month:02d}-{day:02d} 10:{k:02d}:00", *profile])
                rows += 1
    return rows


def run_together(threads: list[threading.Thread], barrier: threading.Barrier) -> float:
    """Start the threads (each waits on `barrier` before its first step), release them at once and
    return the seconds until the last one ends: the wall time of the concurrent phase alone."""
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def stop_service(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the service under test; kill it if it has not stopped after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Until `ohbot serve` on this loopback port answers /healthz with 200 (model and index loaded);
    SystemExit if the process dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"ohbot serve did not become healthy (exit {proc.poll()})")
