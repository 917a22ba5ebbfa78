"""Webhook throughput of `ohbot serve` at province scale: two real worker processes on one PostgreSQL,
the fake Bot API delivering webhooks to them in turn (tests/fakes/fake_bot_api.py `deliver_webhooks`).

Usage: .venv/bin/python benchmarks/serve_scale_bench.py --database-url postgresql://… [--data-dir DIR]
       [--users 50] [--updates 1000] [--adapter-only]
The workers run in a fresh schema of that database (dropped afterwards). The scripted users and the
checks are telegram_bench.py's (closed loop: each user waits for the reply before the next message;
every update gets exactly one reply, in order). Targets (issue #14): ≥ 300 updates/s, p95 reply ≤ 300 ms,
none lost. With --adapter-only every question is /help (no retrieval): what the web, database and
Telegram layers cost; without it, retrieval's CPU time dominates on a 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.common import cpu_seconds, free_port, prepare_data, questions, stop_service, wait_healthy  # noqa: E402
from benchmarks.telegram_bench import FIRST_USER, Bench  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.storage import migrate  # noqa: E402
from bot.storage.db import make_engine  # noqa: E402
from tests.fakes.fake_bot_api import FakeBotAPI  # noqa: E402

TOKEN = "434343:SCALE-bench-token"
TARGET_RATE = 300.0
TARGET_P95_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", help="data dir holding (or to hold) the index; default as ohbot")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--adapter-only", action="store_true")
    args = parser.parse_args()
    settings = load_settings(args.data_dir)
    qs = ["/help"] if args.adapter_only else questions()
    per_user = max(args.updates // args.users - 2, 1)
    closed_q = {u: [qs[(i * 7 + n) % len(qs)] for n in range(per_user)]
                for i, u in enumerate(range(FIRST_USER, FIRST_USER + args.users))}
    schema = f"ohbot_bench_serve_{os.getpid()}"
    admin = make_engine(args.database_url, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    engine = make_engine(url, pool_size=1)
    migrate.upgrade(engine)
    engine.dispose()
    api = FakeBotAPI(token=TOKEN).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OHBOT_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=api.base_url, PYTHONUNBUFFERED="1",
               TELEGRAM_WEBHOOK_URL="https://bot.example.org/telegram", OHBOT_DATABASE_URL=url,
               OHBOT_SALT="bench-salt", OHBOT_EMBEDDING_MODEL=settings.model,
               OHBOT_EMBEDDING_BACKEND=settings.backend)
    procs: list[tuple[subprocess.Popen, int]] = []
    dirs: list[Path] = []  # the workers' throw-away data dirs, removed at the end
    status = 1
    try:
        started = time.perf_counter()
        for n in range(2):
            data = prepare_data(settings.data_dir, f"ohbot-servebench-{n}-")
            dirs.append(data)
            port = free_port()
            with open(data / "serve.log", "wb") as log:
                proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--data-dir", str(data), "serve",
                                         "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append((proc, port))
        for proc, port in procs:
            wait_healthy(port, proc)
        print(f"two workers up in {time.perf_counter() - started:.1f} s")
        api.deliver_webhooks([f"http://127.0.0.1:{port}/telegram" for _, port in procs], connections=40)
        api.send_text(1, "职业健康检查的钱要我自己出吗")  # warm-up, outside the measurement
        api.wait_for(1, timeout=60)
        bench = Bench(api, args.users)
        cpu, own = sum(cpu_seconds(p.pid) for p, _ in procs), cpu_seconds(os.getpid())
        n, elapsed, lat = bench.closed_loop(closed_q)
        cpu, own = sum(cpu_seconds(p.pid) for p, _ in procs) - cpu, cpu_seconds(os.getpid()) - own
        lat.sort()
        p95 = lat[int(0.95 * len(lat)) - 1] * 1000
        rate = n / elapsed
        print(f"closed loop on 2 workers: {args.users} users, {n} updates in {elapsed:.2f} s = {rate:.1f} updates/s; "
              f"reply latency p50 {statistics.median(lat) * 1000:.0f} ms, p95 {p95:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms; workers' CPU {cpu / n * 1000:.1f} ms/update, this process's "
              f"(fake Telegram and the users) {own / n * 1000:.1f} ms/update; {os.cpu_count()} cores")
        problems = bench.check()
        retried = sum(1 for e in api.webhook_log if e["status"] != 200)
        print(f"check: {'OK: none lost, none answered twice, all in order' if not problems else 'PROBLEMS:'}; "
              f"{retried} deliveries retried")
        for p in problems[:20]:
            print("  -", p)
        ok = not problems and rate >= TARGET_RATE and p95 <= TARGET_P95_MS
        print(f"≥ {TARGET_RATE:.0f} updates/s and p95 ≤ {TARGET_P95_MS:.0f} ms: {'ok' if ok else 'NOT MET'}")
        status = 0 if ok else 1
    finally:
        for proc, _ in procs:
            stop_service(proc, 20)
        api.stop()
        with admin.begin() as conn:
            conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        admin.dispose()
        for data in dirs:
            shutil.rmtree(data, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
