"""Helpers shared by the tests: paths of the repository, processes and ports on loopback, and
independent reference computations.

The reference formulas here are written from their textbook definitions, not imported from the
code under test, so a test that compares the two can fail.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KNOWLEDGE = REPO_ROOT / "knowledge"
SHARED = REPO_ROOT.parent / "shared"
Z95 = 1.959963984540054  # the two-sided 95 % normal quantile


def wilson_by_hand(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(2x + z² ∓ z·√(z² + 4x(n−x)/n)) / (2(n + z²)): the count form of the Wilson bounds, clipped to [0, 1]."""
    root = z * math.sqrt(z * z + 4.0 * x * (n - x) / n)
    den = 2.0 * (n + z * z)
    return max(0.0, (2 * x + z * z - root) / den), min(1.0, (2 * x + z * z + root) / den)


def run_cli(capsys, data_dir: Path, *argv: str) -> tuple[int, str, str]:
    """`ohbot --data-dir DATA_DIR ARGV...` in this process: (exit code, stdout, stderr) via pytest's capsys."""
    from bot.cli import main

    code = main(["--data-dir", str(data_dir), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, rows: Iterable[Sequence[str]], header: Sequence[str]) -> Path:
    """`rows` under `header` as a UTF-8 CSV file at `path` (an import file a test hands to the CLI)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def private_data_dir(index_dir: Path, session_data: Path, target: Path) -> Path:
    """`target` made a data directory of a test's own (a service writes ohbot.db and its salt there):
    a copy of the session index, the session's exported model linked (never copied: ~100 MB)."""
    shutil.copytree(index_dir, target / "index")
    if (session_data / "models").exists():
        (target / "models").symlink_to((session_data / "models").resolve(), target_is_directory=True)
    return target


def free_port() -> int:
    """A free loopback port (for a service a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> int | None:
    """SIGTERM, then kill if it hangs; the exit code of a graceful stop, else None (also for no process)."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return None


def post_webhook(url: str, update: dict, headers: dict | None = None, timeout: float = 20.0) -> int:
    """POST a Telegram update as JSON to a webhook once its server listens (a process just started may
    not yet); the HTTP status, an error status included. Raises the connection error after `timeout`."""
    request = urllib.request.Request(url, data=json.dumps(update).encode(), headers={
        "Content-Type": "application/json", **(headers or {})})
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:  # not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def sql(state, query: str, **params) -> list[dict]:
    """The rows (as dicts) of a hand-written SQL statement on a State's database, committed; for tests
    that look inside the tables. Quote `"user"` (a reserved word on PostgreSQL)."""
    from sqlalchemy import text

    with state.write() as conn:
        result = conn.execute(text(query), params)
        return [dict(r) for r in result.mappings()] if result.returns_rows else []


def count(state, table: str, where: str = "true", **params) -> int:
    """How many rows of `table` match `where` (named parameters)."""
    return int(sql(state, f"select count(*) as n from {table} where {where}", **params)[0]["n"])


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float, poll: float = 0.2) -> bool:
    """True once `ohbot serve` at `base` (http://127.0.0.1:PORT) answers /healthz with 200 (model and index
    loaded); False when the process exits or `timeout` seconds pass first. Callers fail with their log."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(poll)
    return False
