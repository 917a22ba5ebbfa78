"""The web chat answers at the latency of `ohbot ask`: the same questions, one at a time, to both.

Usage: .venv/bin/python benchmarks/webchat_bench.py [--data-dir DIR] [--questions N]
(the index is built into DIR, default ./data, if it is missing; a copy is used, so DIR is not written).

Two real processes on one copy of the index: `ohbot ask --json -` (a question per stdin line, the
answer's JSON line read back) and `ohbot serve` (one browser: GET / for its cookie and CSRF token,
then POST /chat/api per question over one keep-alive connection). The web side does everything a
user's request does: CSRF and cookie checks, the per-IP counter in the database (the limit set
high enough never to refuse), the dialogue core's state reads and writes (user, follow-up context,
the kept answer), the signed buttons and the JSON. The two are asked alternately, question by
question, so both see the same machine load. After a warm-up of 20 questions each, prints p50 /
p95 / max per side, the web's overhead at the median, and each process's CPU time per question.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_seconds, free_port, prepare_data, questions, stop_service, wait_healthy  # noqa: E402

OHBOT = Path(sys.executable).parent / "ohbot"
WARM_UP = 20


def percentiles(times: list[float]) -> str:
    """p50 / p95 / max in milliseconds."""
    ordered = sorted(times)
    p95 = ordered[max(0, int(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):6.1f} ms   p95 {p95:6.1f} ms   max {ordered[-1]:6.1f} ms"


class Ask:
    """`ohbot ask --json -`: one line in, one JSON line out."""

    def __init__(self, data: Path, env: dict) -> None:
        self.proc = subprocess.Popen([str(OHBOT), "--data-dir", str(data), "ask", "--json", "-"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def __call__(self, question: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(question.replace("\n", " ") + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(30)


class Browser:
    """One browser of the web chat: its cookie and CSRF token, a keep-alive connection."""

    def __init__(self, port: int) -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            cookie = page.headers["set-cookie"].split(";")[0]
            self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode()).group(1)
        self.headers = {"Cookie": cookie, "X-CSRF-Token": self.csrf, "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def __call__(self, question: str) -> dict:
        self.conn.request("POST", "/chat/api", body=json.dumps({"text": question}).encode(), headers=self.headers)
        response = self.conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"/chat/api answered {response.status}: {body}")
        return body


def main() -> None:
    """Start both processes, warm them up, time the same questions alternately, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    data = prepare_data(Path(args.data_dir), "ohbot-webchat-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
    env["OHBOT_WEBCHAT_RATE_LIMIT"] = "1000000"  # counted, never refused: one client sends everything
    port = free_port()
    serve = subprocess.Popen([str(OHBOT), "--data-dir", str(data), "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ask = Ask(data, env)
    try:
        wait_healthy(port, serve)
        web = Browser(port)
        pool = questions()
        timed = (pool * (args.questions // len(pool) + 1))[: args.questions]
        for q in pool[-WARM_UP:]:
            ask(q)
            web(q)
        cpu_ask, cpu_web = cpu_seconds(ask.proc.pid), cpu_seconds(serve.pid)
        times: dict[str, list[float]] = {"ask": [], "web": []}
        same = 0
        for q in timed:
            started = time.perf_counter()
            asked = ask(q)
            times["ask"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            chatted = web(q)
            times["web"].append((time.perf_counter() - started) * 1000)
            same += asked["found"] == (bool(chatted["replies"]) and bool(chatted["replies"][0]["sources"]))
        cpu_ask, cpu_web = cpu_seconds(ask.proc.pid) - cpu_ask, cpu_seconds(serve.pid) - cpu_web
    finally:
        ask.close()
        stop_service(serve, 20)
    n = len(timed)
    print(f"{n} questions (tests/eval materials sets), each to both, alternately; warm-up {WARM_UP} each")
    print(f"ohbot ask --json -   {percentiles(times['ask'])}   CPU {cpu_ask / n * 1000:.1f} ms/question")
    print(f"web chat /chat/api   {percentiles(times['web'])}   CPU {cpu_web / n * 1000:.1f} ms/question")
    overhead = statistics.median(times["web"]) - statistics.median(times["ask"])
    print(f"web chat overhead at the median: {overhead:+.1f} ms; sourced answer in both or neither: {same}/{n}")


if __name__ == "__main__":
    main()
