"""Throughput of the Telegram channel: the real bot process (bot.channels.telegram.run with the real
dialogue and index) against the fake Bot API server (tests/fakes/fake_bot_api.py) on loopback.

Usage: .venv/bin/python benchmarks/telegram_bench.py [--data-dir DIR] [--users 50] [--updates 1000]
(builds the index into DIR if it is missing; the bot's own database goes to a temporary copy.)

Two phases with the same scripted users:

* closed loop: each of the --users users sends /start, presses a role button, then asks questions,
  always waiting for the reply before sending the next message (like people do); --updates updates
  in total. Prints updates/s and the reply latency (sent → reply received at the fake server).
* burst: every user then queues all its questions at once (--updates questions in total) and the
  bot works through the backlog. Prints updates/s.

Checks after each phase: every update got exactly one bot message (none lost, none answered twice,
counted again after a quiet second), every user's replies arrived in the order asked, and every
question got the same answer for every user (a reply sent to the wrong user would break that).
With --adapter-only every question is replaced by /help (no retrieval): the channel's own cost.
The per-user rate limit is switched off for the run (it would otherwise, rightly, silence users
sending more than 20 messages a minute).
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
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a script: the repository root holds tests.fakes

from benchmarks.common import cpu_seconds, prepare_data, questions, run_together, stop_service  # noqa: E402
from bot.config import load_settings  # noqa: E402
from tests.fakes.fake_bot_api import FakeBotAPI  # noqa: E402

TOKEN = "424242:BENCH-token"
FIRST_USER = 700_000
BOT_CODE = (
    "import sys\n"
    "from bot.config import load_settings\n"
    "from bot.dialogue.core import open_dialogue\n"
    "from bot.channels.telegram import run\n"
    "s = load_settings(data_dir=sys.argv[1])\n"
    "run(s, open_dialogue(s, build_if_missing=False), rate_limit=10**9)\n"
)


class Bench:
    def __init__(self, api: FakeBotAPI, users: int) -> None:
        self.api = api
        self.users = [FIRST_USER + n for n in range(users)]
        self.sent: dict[int, list[str]] = defaultdict(list)  # what each user sent, in order
        self.errors: list[str] = []

    def expect(self, user: int, what: str) -> None:
        self.sent[user].append(what)

    def closed_loop(self, per_user_questions: dict[int, list[str]]) -> tuple[int, float, list[float]]:
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(self.users) + 1)

        def script(user: int) -> None:
            mine: list[float] = []
            try:
                barrier.wait()
                t = time.perf_counter()
                self.api.send_text(user, "/start")
                self.expect(user, "/start")
                [start] = self.api.wait_for(user, timeout=60)
                mine.append(time.perf_counter() - t)
                t = time.perf_counter()
                self.api.press_button(user, start["message_id"], "role:worker")
                self.expect(user, "role:worker")
                self.api.wait_for(user, timeout=60)
                mine.append(time.perf_counter() - t)
                for q in per_user_questions[user]:
                    t = time.perf_counter()
                    self.api.send_text(user, q)
                    self.expect(user, q)
                    self.api.wait_for(user, timeout=60)
                    mine.append(time.perf_counter() - t)
            except Exception as exc:  # noqa: BLE001 - reported below
                self.errors.append(f"user {user}: {exc}"[:300])
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=script, args=(u,), daemon=True) for u in self.users]
        elapsed = run_together(threads, barrier)
        return len(latencies), elapsed, latencies

    def burst(self, per_user_questions: dict[int, list[str]]) -> tuple[int, float]:
        before = {u: len(self.api.messages(u)) for u in self.users}
        total = sum(len(qs) for qs in per_user_questions.values())
        started = time.perf_counter()
        # interleaved: user 1 q1, user 2 q1, ..., user 1 q2, ...
        for n in range(max(len(qs) for qs in per_user_questions.values())):
            for u in self.users:
                if n < len(per_user_questions[u]):
                    self.api.send_text(u, per_user_questions[u][n])
                    self.expect(u, per_user_questions[u][n])
        want = {u: before[u] + len(per_user_questions[u]) for u in self.users}
        try:
            self.api.wait_until(lambda: all(len(self.api._sent.get(u, [])) >= want[u] for u in self.users),
                                timeout=600, what="all burst replies")
        except AssertionError as exc:
            self.errors.append(str(exc)[:300])
        return total, time.perf_counter() - started

    def check(self) -> list[str]:
        """Exactly one bot message per update, in order, and one answer text per question."""
        time.sleep(1.0)  # anything sent late (a duplicate) has arrived by now
        problems = list(self.errors)
        by_question: dict[str, Counter] = defaultdict(Counter)
        for u in self.users:
            replies = [m["text"] or "" for m in self.api.messages(u)]
            asked = self.sent[u]
            if len(replies) != len(asked):
                problems.append(f"user {u}: {len(asked)} updates but {len(replies)} bot messages")
                continue
            for q, r in zip(asked, replies):
                by_question[q][r] += 1
            if "身份" not in replies[0] or "已设为" not in replies[1]:
                problems.append(f"user {u}: replies out of order at the start")
        for q, answers in by_question.items():
            if len(answers) > 1:
                problems.append(f"question {q!r} got {len(answers)} different replies across users")
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="data dir holding (or to hold) the index; default as ohbot")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--updates", type=int, default=1000, help="updates per phase")
    parser.add_argument("--adapter-only", action="store_true",
                        help="send /help instead of questions: the channel's own overhead, no retrieval")
    args = parser.parse_args()
    settings = load_settings(args.data_dir)
    data = prepare_data(settings.data_dir, "ohbot-tgbench-")
    qs = ["/help"] if args.adapter_only else questions()
    per_user = max(args.updates // args.users - 2, 1)  # /start and the role button count too
    closed_q = {u: [qs[(i * 7 + n) % len(qs)] for n in range(per_user)]
                for i, u in enumerate(range(FIRST_USER, FIRST_USER + args.users))}
    burst_n = max(args.updates // args.users, 1)
    burst_q = {u: [qs[(i * 11 + n) % len(qs)] for n in range(burst_n)]
               for i, u in enumerate(range(FIRST_USER, FIRST_USER + args.users))}

    api = FakeBotAPI(token=TOKEN).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url, PYTHONUNBUFFERED="1",
               OHBOT_EMBEDDING_MODEL=settings.model, OHBOT_EMBEDDING_BACKEND=settings.backend)
    log_path = data / "bot.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", BOT_CODE, str(data)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    status = 1
    try:
        started = time.perf_counter()
        api.wait_for_call("getUpdates", timeout=120)
        print(f"bot process up in {time.perf_counter() - started:.1f} s (model + index load)")
        # warm-up outside the measurement: the first answer loads lazily initialised parts
        api.send_text(1, "职业健康检查的钱要我自己出吗")
        api.wait_for(1, timeout=60)

        bench = Bench(api, args.users)
        cpu = cpu_seconds(proc.pid)
        n, elapsed, lat = bench.closed_loop(closed_q)
        cpu, cpu_closed = cpu_seconds(proc.pid), cpu_seconds(proc.pid) - cpu
        lat.sort()
        print(f"closed loop: {args.users} users, {n} updates in {elapsed:.2f} s = {n / elapsed:.1f} updates/s; "
              f"reply latency p50 {statistics.median(lat) * 1000:.0f} ms, "
              f"p95 {lat[int(0.95 * len(lat)) - 1] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; "
              f"bot CPU {cpu_closed / n * 1000:.1f} ms/update")
        problems = bench.check()

        cpu = cpu_seconds(proc.pid)
        total, elapsed = bench.burst(burst_q)
        cpu_burst = cpu_seconds(proc.pid) - cpu
        print(f"burst:       {args.users} users, {total} questions queued at once, all answered in "
              f"{elapsed:.2f} s = {total / elapsed:.1f} updates/s; bot CPU {cpu_burst / total * 1000:.1f} ms/update")
        problems += bench.check()
        problems = list(dict.fromkeys(problems))
        bot_log = log_path.read_text(encoding="utf-8", errors="replace")
        if "Traceback" in bot_log:
            problems.append("the bot's log has a Traceback")
        updates = sum(len(v) for v in bench.sent.values())
        messages = sum(len(api.messages(u)) for u in bench.users)
        print(f"check: {updates} updates, {messages} bot messages, "
              f"{'OK: none lost, none answered twice, all in order' if not problems else 'PROBLEMS:'}")
        for p in problems[:20]:
            print("  -", p)
        status = 1 if problems else 0
    finally:
        stop_service(proc, 20)
        api.stop()
        shutil.rmtree(data, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
