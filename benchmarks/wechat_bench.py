"""Throughput and passive-reply latency of the WeChat channel: one real `ohbot serve` process (real
dialogue and index) against the fake WeChat platform (tests/fakes/wechat_platform.py) on loopback.

Usage: .venv/bin/python benchmarks/wechat_bench.py [--data-dir DIR] [--users 50] [--messages 2000]
       [--mode safe|plain] [--phase adapter|questions|both]
(builds the index into DIR if it is missing; the service's own database goes to a temporary copy.)

Every user is an Official Account follower (safe mode by default: every callback is AES-encrypted
and signed, every reply encrypted). Users work in a closed loop: send a message, wait until the
answer is shown, send the next (like people do), all at once. Phases:

* adapter: 帮助 / 我的资料 / 隐私 in turn: the channel's own cost (signature, decryption, parsing,
  de-duplication claim, dialogue state, stored menu, encrypted reply), no retrieval;
* questions: real questions from tests/eval (retrieval and answer composition included).

Printed per phase: callbacks/s, passive-reply latency p50/p95/max (the callback's HTTP round trip,
what WeChat waits for), how many answers needed the acknowledge-then-send path, the service's CPU
per callback. Checks: every message was delivered once and answered exactly once (one passive
reply, no system notice, no platform error), no traceback in the service's log.
Targets (issue #12): ≥ 300 callbacks/s, p95 ≤ 100 ms, none lost or answered twice.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    cpu_seconds,
    free_port,
    prepare_data,
    questions,
    run_together,
    stop_service,
    wait_healthy,
)
from bot.channels.wechat import ACK  # noqa: E402
from bot.config import load_settings  # noqa: E402
from tests.fakes.wechat_platform import FakeWeChatPlatform  # noqa: E402

ADAPTER_MESSAGES = ["帮助", "我的资料", "隐私"]


def run_phase(platform: FakeWeChatPlatform, users: list, texts: list[str], per_user: int) -> dict:
    """Closed loop: every user sends `per_user` messages, each after the previous one's answer."""
    barrier = threading.Barrier(len(users) + 1)
    errors: list[str] = []
    keys: list[str] = []
    lock = threading.Lock()

    def script(i: int, user) -> None:
        mine = []
        try:
            barrier.wait()
            for n in range(per_user):
                sent = user.send_text(texts[(i * 7 + n) % len(texts)])
                mine.append(sent["key"])
                user.wait_for(lambda m: m["text"] != ACK, timeout=120)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{user.id}: {exc}"[:300])
        with lock:
            keys.extend(mine)

    threads = [threading.Thread(target=script, args=(i, u), daemon=True) for i, u in enumerate(users)]
    elapsed = run_together(threads, barrier)
    return {"keys": keys, "elapsed": elapsed, "errors": errors}


def check(platform: FakeWeChatPlatform, users: list) -> list[str]:
    """Every message delivered once and answered once (one shown answer per message sent, counting
    from the start), no system notice, no platform error."""
    time.sleep(1.0)  # a late duplicate would have arrived by now
    problems = list(platform.errors[:10])
    for record in platform.inbound():
        if len(record["deliveries"]) != 1 or record["outcome"] != "reply":
            problems.append(f"{record['key']}: {len(record['deliveries'])} deliveries, outcome {record['outcome']}")
    for user in users:
        sent = len(platform.inbound(user.id))
        shown = [m for m in user.messages() if m["text"] != ACK and m["via"] != "system"]
        if len(shown) != sent:
            problems.append(f"{user.id}: {sent} messages sent but {len(shown)} answers shown")
        if any(m["via"] == "system" for m in user.messages()):
            problems.append(f"{user.id}: saw the platform's system notice")
    return problems


def main() -> int:
    """Start the service, run the phases, print the figures; exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="data dir holding (or to hold) the index; default as ohbot")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000, help="messages per phase")
    parser.add_argument("--mode", choices=["safe", "plain"], default="safe")
    parser.add_argument("--phase", choices=["adapter", "questions", "both"], default="both")
    args = parser.parse_args()
    settings = load_settings(args.data_dir)
    data = prepare_data(settings.data_dir, "ohbot-wxbench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform = FakeWeChatPlatform(oa_callback_url=f"{base}/wechat").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_", "WECHAT_", "WECOM_"))}
    env.update(WECHAT_APP_ID=platform.oa.app_id, WECHAT_APP_SECRET=platform.oa.app_secret,
               WECHAT_TOKEN=platform.oa.token, WECHAT_AES_KEY=platform.oa.encoding_aes_key,
               WECHAT_API_BASE_URL=platform.api_base_url, PYTHONUNBUFFERED="1",
               OHBOT_EMBEDDING_MODEL=settings.model, OHBOT_EMBEDDING_BACKEND=settings.backend)
    log_path = data / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--data-dir", str(data), "serve", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    status = 1
    try:
        started = time.perf_counter()
        wait_healthy(port, proc)
        print(f"ohbot serve up in {time.perf_counter() - started:.1f} s (model + index load, warm-up answer); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        users = [platform.oa_user(mode=args.mode) for _ in range(args.users)]
        per_user = max(args.messages // args.users, 1)
        phases = [("adapter", ADAPTER_MESSAGES), ("questions", questions())]
        problems: list[str] = []
        for name, texts in phases:
            if args.phase not in (name, "both"):
                continue
            cpu, own = cpu_seconds(proc.pid), time.process_time()
            result = run_phase(platform, users, texts, per_user)
            cpu, own = cpu_seconds(proc.pid) - cpu, time.process_time() - own
            keys = set(result["keys"])
            latencies = sorted(d["elapsed"] for d in platform.deliveries() if d["key"] in keys)
            acked = sum(1 for u in users for m in u.messages() if m["text"] == ACK and m["reply_to"] in keys)
            n = len(keys)
            print(f"{name:9}: {args.users} users ({args.mode} mode), {n} callbacks in {result['elapsed']:.2f} s = "
                  f"{n / result['elapsed']:.0f} callbacks/s; passive reply p50 {statistics.median(latencies) * 1000:.0f} ms, "
                  f"p95 {latencies[int(0.95 * len(latencies)) - 1] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
                  f"{acked} acknowledged then sent; CPU per callback: service {cpu / n * 1000:.1f} ms, "
                  f"fake platform and users {own / n * 1000:.1f} ms", flush=True)
            problems += result["errors"] + check(platform, users)
        if "Traceback" in log_path.read_text(encoding="utf-8", errors="replace"):
            problems.append("the service's log has a Traceback")
        print("check: " + ("OK: every message delivered once and answered once, no platform error"
                           if not problems else "PROBLEMS:"))
        for problem in problems[:20]:
            print("  -", problem)
        status = 1 if problems else 0
    finally:
        stop_service(proc, 30)
        platform.stop()
        shutil.rmtree(data, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
