"""`ohbot report` at province scale: N respondents × 20 answers generated with SQL in a fresh schema of a
PostgreSQL database, then the real `ohbot report --campaign … --json` process timed, with its peak RSS.

Usage: .venv/bin/python benchmarks/report_scale_bench.py --database-url postgresql://… [--respondents 1000000]
Targets (issue #14): ≤ 10 s and RSS ≤ 1 GB for 1,000,000 respondents. The schema is dropped afterwards.
Answers are deterministic: respondent g's i-th item is bank item 1 + (37 g + 17 i) mod B (B items in use,
--bank-items; so forms hold different items, as drawn forms do), answered correctly when
(7 i + 13 g) mod 20 < 10 + g mod 7, so respondent g has 10 + g mod 7 of 20 right (threshold 0.6: 5 in 7
are aware). Forms complete over 300 days.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from bot.quiz.bank import load_bank  # noqa: E402
from bot.storage import migrate  # noqa: E402
from bot.storage.db import make_engine  # noqa: E402

ITEMS = 20
TARGET_S = 10.0
TARGET_RSS_MB = 1024.0
OHBOT = Path(sys.executable).parent / "ohbot"

USERS = """
insert into users (key, role, region, industry, enterprise_size, consent, pending, created, updated)
select 'u' || g, 'worker', (array['柳南区', '柳北区', '城中区', '鱼峰区'])[1 + g % 4],
       (array['construction', 'mining', 'manufacturing', 'other'])[1 + (g / 7) % 4], 'small_micro', 0, '{}',
       '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00'
from generate_series(1, :n) g"""
FORMS = """
insert into forms (id, campaign, "user", kind, items, position, started_at, completed_at, source)
select 'f' || g, 'bench', 'u' || g, 'counted', '[]', :items, t, t, 'import'
from (select g, to_char(timestamp '2024-01-01' + (g % 300) * interval '1 day' + (g % 3600) * interval '1 second',
                        'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') as t
      from generate_series(1, :n) g) s"""
RESPONSES = """
insert into responses (form, campaign, "user", item_id, answer, correct, answered_at)
select 'f' || g, 'bench', 'u' || g, (cast(:ids as text[]))[1 + (37 * g + 17 * i) % :bank], 'A', case when (7 * i + 13 * g) % 20 < 10 + g % 7 then 1 else 0 end,
       '2024-01-01T00:00:00+00:00'
from generate_series(1, :n) g, generate_series(1, :items) i"""

#: migration 0010's back-fill: forms.answered and forms.correct from the answers generated above
SCORES = importlib.import_module("bot.storage.migrations.versions.0010_form_score").BACKFILL
#: migration 0013's: forms.marks from the answers generated above
MARKS = importlib.import_module("bot.storage.migrations.versions.0013_form_marks").BACKFILL["postgresql"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL database to make a schema in")
    parser.add_argument("--respondents", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="SCHEMA", help="generate into this schema once and keep it (reused "
                        "when it exists: later runs time the report only; drop it yourself)")
    parser.add_argument("--repeat", type=int, default=1, help="time the report this many times")
    parser.add_argument("--bank-items", type=int, help="draw each form's 20 items from this many items of the "
                        "bank (default: every item in use, as a campaign does; 20: everybody the same items)")
    args = parser.parse_args()
    ids = [i.id for i in load_bank(ROOT / "knowledge") if not i.retired][:args.bank_items]
    if len(ids) < ITEMS or len(ids) % 17 == 0:  # 17 · i mod len(ids) must give ITEMS different items
        parser.error(f"--bank-items must be at least {ITEMS} and not a multiple of 17")
    schema = args.keep or f"ohbot_bench_report_{os.getpid()}"
    admin = make_engine(args.database_url, pool_size=1)
    with admin.begin() as conn:
        exists = conn.execute(text("select 1 from information_schema.schemata where schema_name = :s"),
                              {"s": schema}).first() is not None
        if not exists:
            conn.execute(text(f'create schema "{schema}"'))
    url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    try:
        engine = make_engine(url, pool_size=1)
        migrate.upgrade(engine)
        if not exists:
            generate(engine, args.respondents, ids)
        engine.dispose()
        ok = all([time_report(url) for _ in range(args.repeat)])  # every run, also after one over target
        sys.exit(0 if ok else 1)
    finally:
        if not args.keep:
            with admin.begin() as conn:
                conn.execute(text(f'drop schema if exists "{schema}" cascade'))
        admin.dispose()


def generate(engine: Engine, respondents: int, ids: list[str]) -> None:
    """The campaign `bench`: `respondents` forms of ITEMS answers each, their stored scores, analyzed."""
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("insert into campaigns (name, start, \"end\", threshold, form_size, status, created) "
                          "values ('bench', '2024-01-01', '2024-12-31', 0.6, :items, 'open', "
                          "'2024-01-01T00:00:00+00:00')"), {"items": ITEMS})
        for statement in (USERS, FORMS, RESPONSES):
            conn.execute(text(statement), {"n": respondents, "items": ITEMS, "ids": ids, "bank": len(ids)})
        # the back-fill groups the answers by form: with the default 4 MB it spilled to disk for over
        # 50 minutes at 10^6 respondents on the loaded machine
        conn.execute(text("SET LOCAL work_mem = '1GB'"))
        conn.execute(text(SCORES))  # each form's stored score, as the quiz and the import write it
        conn.execute(text(MARKS))  # and its answers' marks
    with engine.connect() as conn:
        # as autovacuum leaves it: the two back-fills rewrote every form row
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("vacuum analyze"))
    print(f"generated {respondents:,} respondents × {ITEMS} answers with SQL in "
          f"{time.perf_counter() - t:.1f} s")


def time_report(url: str) -> bool:
    """Run `ohbot report --json` on the campaign, print its wall time, CPU time and peak RSS; within target?"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OHBOT_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run([str(OHBOT), "--database-url", url, "report", "--campaign", "bench", "--json"],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_mb = after.ru_maxrss / 1024
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode != 0:
        print(f"ohbot report failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return False
    overall = json.loads(done.stdout)["overall"]
    print(f"ohbot report: {elapsed:.1f} s (its CPU {cpu:.1f} s), peak RSS {rss_mb:,.0f} MB "
          f"(n={overall['n']:,}, rate={overall['rate']:.3f}; load average {os.getloadavg()[0]:.1f})")
    ok = elapsed <= TARGET_S and rss_mb <= TARGET_RSS_MB
    print(f"≤ {TARGET_S:.0f} s and ≤ {TARGET_RSS_MB:.0f} MB: {'ok' if ok else 'NOT MET'}", flush=True)
    return ok


if __name__ == "__main__":
    main()
