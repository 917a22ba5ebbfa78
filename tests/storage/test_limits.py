"""The shared request budget (bot/storage/limits.py) on SQLite and PostgreSQL: counts per key and
window, a new window starts afresh, and workers with their own engines count every hit exactly once."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from bot.storage import migrate
from bot.storage.db import connect
from bot.storage.limits import PRUNE_EVERY, RateLimiter
from bot.storage.tables import rate_limits


class Clock:
    """Epoch seconds the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_limit_per_key_and_window(db_url, engine_for):
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    clock = Clock(1_000_040.0)  # 20 s into a 60-s window (1,000,020 = 16,667 × 60)
    limiter = RateLimiter(engine, limit=3, window=60, clock=clock)
    verdicts = [limiter.hit("ip-a") for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.hits for v in verdicts] == [1, 2, 3, 4, 5]
    assert verdicts[3].retry_after == 40
    assert limiter.hit("ip-b").allowed  # another client has its own budget
    clock.now += 40  # the next window
    assert limiter.hit("ip-a").allowed and limiter.hit("ip-a").hits == 2


def test_a_limit_of_zero_is_off_and_writes_nothing(db_url, engine_for):
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    limiter = RateLimiter(engine, limit=0, window=60)
    assert all(limiter.hit("ip").allowed for _ in range(100))
    with connect(engine) as conn:
        assert conn.execute(select(func.count()).select_from(rate_limits)).scalar() == 0


def test_workers_share_one_budget_and_count_every_hit(db_url, engine_for):
    """Four workers (each with its own engine, as separate processes have), five threads each."""
    migrate.upgrade(engine_for(db_url))
    clock = Clock(2_000_000.0)
    limiters = [RateLimiter(engine_for(db_url), limit=50, window=60, clock=clock) for _ in range(4)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def work(limiter: RateLimiter) -> None:
        for _ in range(10):
            verdict = limiter.hit("shared-ip")
            with lock:
                allowed.append(verdict.allowed)

    threads = [threading.Thread(target=work, args=(lim,)) for lim in limiters for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 200 and sum(allowed) == 50  # exactly the limit, across all workers
    with connect(limiters[0].engine) as conn:
        assert conn.execute(select(rate_limits.c.hits)).scalar() == 200


def test_old_windows_are_pruned(db_url, engine_for):
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    clock = Clock(3_000_000.0)
    limiter = RateLimiter(engine, limit=10, window=60, clock=clock)
    limiter.hit("old")
    clock.now += 600
    for n in range(PRUNE_EVERY - 1):
        limiter.hit(f"k{n % 7}")
    with connect(engine) as conn:
        keys = set(conn.execute(select(rate_limits.c.key)).scalars())
    assert "old" not in keys and len(keys) == 7
