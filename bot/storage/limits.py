"""Request budgets shared by every process: a fixed-window counter per client in the state database.

Why in the database: several `ohbot serve` workers behind a load balancer must share one budget per
client, or the limit would grow with the number of workers. One upsert per request (INSERT … ON
CONFLICT DO UPDATE … RETURNING, atomic on SQLite and PostgreSQL) counts the hit and says how many the
client has made in the current window; old windows are pruned now and then.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete

from bot.storage.db import insert, transaction
from bot.storage.tables import rate_limits

PRUNE_EVERY = 500  # hits between two prunes (per process)


@dataclass
class Verdict:
    """One request's place in its client's budget."""
    allowed: bool
    hits: int  # requests in the current window, this one included
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimiter:
    """`limit` requests per `window` seconds per key (keys are already pseudonymous, e.g. salted IP
    hashes). A limit of 0 allows everything and touches no table."""

    def __init__(self, engine: Engine, limit: int, window: int, clock: Callable[[], float] = time.time) -> None:
        """Over the state database's engine; `clock` gives epoch seconds (tests move it)."""
        self.engine, self.limit, self.window, self.clock = engine, limit, max(1, window), clock
        self._hits = 0

    def hit(self, key: str) -> Verdict:
        """Count one request of `key`; allowed while the window's count is within the limit."""
        if self.limit <= 0:
            return Verdict(True, 0, 0)
        now = self.clock()
        slot = int(now // self.window)
        with transaction(self.engine) as conn:
            stmt = insert(conn, rate_limits).values(key=key, slot=slot, hits=1)
            stmt = stmt.on_conflict_do_update(index_elements=["key", "slot"],
                                              set_={"hits": rate_limits.c.hits + 1})
            hits = int(conn.execute(stmt.returning(rate_limits.c.hits)).scalar_one())
            self._hits += 1
            if self._hits % PRUNE_EVERY == 0:
                conn.execute(delete(rate_limits).where(rate_limits.c.slot < slot - 1))
        if hits <= self.limit:
            return Verdict(True, hits, 0)
        return Verdict(False, hits, max(1, int((slot + 1) * self.window - now + 0.999)))
