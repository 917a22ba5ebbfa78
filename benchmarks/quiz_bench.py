"""Quiz campaign speed: the awareness report over 100,000 responses, and answers recorded per second
with many people taking the quiz at once on one State.

Usage: .venv/bin/python benchmarks/quiz_bench.py [--respondents 5000] [--items 20] [--takers 50]
                                                 [--database-url postgresql://…]
Works in a temporary data directory (no index, no model), or with --database-url in fresh schemas of
that PostgreSQL database (dropped afterwards). Targets: campaign_report ≤ 2 s for
5,000 × 20 responses; ≥ 1,000 answers/s with 50 concurrent takers, none lost (issue #14).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.common import run_together, write_responses  # noqa: E402
from bot.awareness.campaigns import campaign_report, import_responses, item_infos  # noqa: E402
from bot.quiz import forms as quiz  # noqa: E402
from bot.quiz.bank import load_bank  # noqa: E402
from bot.storage import migrate  # noqa: E402
from bot.storage.db import make_engine  # noqa: E402
from bot.storage.state import State  # noqa: E402
from bot.taxonomy import load_taxonomy  # noqa: E402

SCHEMAS: list[str] = []
REPORT_TARGET_S = 2.0
ANSWERS_TARGET_PER_S = 1000.0


def open_state(data_dir: Path, name: str, database_url: str | None) -> State:
    """A new state database: a SQLite file in data_dir, or a fresh schema `name` of the PostgreSQL
    database at `database_url` (migrated, as `ohbot db upgrade` does; dropped by drop_schemas)."""
    if not database_url:
        return State(data_dir / f"{name}.db", "bench-salt")
    schema = f"ohbot_bench_{name}_{os.getpid()}"
    admin = make_engine(database_url, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        conn.execute(text(f'create schema "{schema}"'))
    admin.dispose()
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url, pool_size=20, max_overflow=40)
    migrate.upgrade(engine)
    SCHEMAS.append(schema)
    return State(engine, "bench-salt")


def drop_schemas(database_url: str | None) -> None:
    """Drop the schemas open_state made."""
    if not database_url or not SCHEMAS:
        return
    admin = make_engine(database_url, pool_size=1)
    with admin.begin() as conn:
        for schema in SCHEMAS:
            conn.execute(text(f'drop schema if exists "{schema}" cascade'))
    admin.dispose()


def bench_report(data_dir: Path, bank: list, taxonomy: dict, respondents: int, items: int,
                 database_url: str | None = None) -> float:
    state = open_state(data_dir, "report", database_url)
    quiz.create_campaign(state, "bench", "2024-01-01", "2024-12-31")
    path = data_dir / "answers.csv"
    rows = write_responses(path, bank, taxonomy, respondents, items, random.Random(7))
    t = time.perf_counter()
    count, errors = import_responses(state, "bench", path, bank, taxonomy)
    assert not errors and count == rows, errors[:5]
    print(f"import: {count:,} answers of {respondents:,} respondents in {time.perf_counter() - t:.2f} s")

    infos = item_infos(bank)
    medians = []
    for by in ([], ["industry"], ["industry", "month"]):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            report = campaign_report(state, "bench", infos, by=by)
            times.append(time.perf_counter() - t)
        o = report["overall"]
        print(f"campaign_report by={by or '-'}: median {statistics.median(times):.2f} s "
              f"(n={o['n']}, rate={o['rate']:.3f}, {len(report['groups'])} groups, {len(report['items'])} items)")
        assert o["n"] == respondents
        medians.append(statistics.median(times))
    return max(medians)


def bench_takers(data_dir: Path, bank: list, takers: int, database_url: str | None = None) -> tuple[float, int, int]:
    state = open_state(data_dir, "takers", database_url)
    campaign = quiz.create_campaign(state, "live", "2024-01-01", "2099-12-31")
    by_id = {i.id: i for i in bank}
    barrier = threading.Barrier(takers + 1)
    given = [0] * takers
    failures: list[BaseException] = []

    def take(n: int) -> None:
        try:
            rng = random.Random(n)
            key = state.user_key("bench", n)
            barrier.wait()
            form = quiz.start_form(state, bank, key, {"role": "worker"}, campaign)
            for k, entry in enumerate(form.items):
                item = by_id[entry["id"]]
                answer = item.answer if rng.random() < 0.8 else "".join(sorted(item.options))[:1]
                if quiz.record_answer(state, form, k, answer, item) is not None:
                    given[n] += 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(takers)]
    elapsed = run_together(threads, barrier)
    if failures:
        raise failures[0]
    with state.read() as conn:
        stored = conn.execute(text("select count(*) from responses where campaign = 'live'")).scalar_one()
        done = conn.execute(text(
            "select count(*) from forms where campaign = 'live' and completed_at is not null")).scalar_one()
        short = conn.execute(text(
            "select count(*) from forms f where campaign = 'live' and position != "
            "(select count(*) from responses r where r.form = f.id)")).scalar_one()
    assert done == takers, f"{done} of {takers} forms completed"
    assert short == 0, f"{short} forms whose position does not match their stored answers"
    return sum(given) / elapsed, sum(given), stored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--respondents", type=int, default=5000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--takers", type=int, default=50)
    parser.add_argument("--database-url", help="PostgreSQL URL: run on fresh schemas there (default: SQLite files)")
    args = parser.parse_args()
    t = time.perf_counter()
    bank = load_bank(ROOT / "knowledge")
    taxonomy = load_taxonomy(ROOT / "knowledge")
    print(f"bank: {len(bank)} items loaded in {time.perf_counter() - t:.2f} s")
    print(f"backend: {'PostgreSQL' if args.database_url else 'SQLite'}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            report_s = bench_report(Path(tmp), bank, taxonomy, args.respondents, args.items, args.database_url)
            rate, given, stored = bench_takers(Path(tmp), bank, args.takers, args.database_url)
        finally:
            drop_schemas(args.database_url)
    print(f"{args.takers} concurrent takers: {rate:,.0f} answers/s; answers given {given}, stored {stored}"
          f"{'' if given == stored else '  LOST ' + str(given - stored)}")
    ok_report = report_s <= REPORT_TARGET_S
    ok_rate = rate >= ANSWERS_TARGET_PER_S and given == stored
    print(f"report ≤ {REPORT_TARGET_S:.0f} s: {'ok' if ok_report else 'TOO SLOW'}; "
          f"≥ {ANSWERS_TARGET_PER_S:.0f} answers/s, none lost: {'ok' if ok_rate else 'FAILED'}")
    sys.exit(0 if ok_report and ok_rate else 1)


if __name__ == "__main__":
    main()
