"""The console's reports, kept per data version and refreshed in the background (stale-while-revalidate).

What: `ReportCache.get(key, version, compute, wait)` returns a `Snapshot` of `compute()`: the one made
for `version` when there is one; otherwise it starts `compute` in a background thread (one at a time
per key, however many pages ask) and waits up to `wait` seconds for it. When it is not
done by then and an older snapshot of the same key exists, that older one is returned, marked
`fresh=False` with the time it was computed, and the new one replaces it when done. With no older
snapshot (the first view of that report in this process) or `wait=None` the caller waits for the
computation.

Why: a campaign of 10^5 respondents takes seconds to aggregate (issue #13), and every new answer
changes its data version. Staff opening the page should see figures at once, labelled with their
time, rather than a page that hangs; the files a statistician downloads (CSV, XLSX, HTML summary)
and `ohbot report` always wait for the current data. A computation that fails is raised to the
callers waiting for it and forgotten, so the next view tries again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from itertools import count
from typing import Generic, TypeVar

log = logging.getLogger("ohbot.console")

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """A computed value, the time it was computed (epoch seconds) and whether it is of the data
    version asked for (`fresh`) or an older one shown while the new one is computed."""

    value: T
    computed_at: float
    fresh: bool


class ReportCache(Generic[T]):
    """Snapshots by key, at most `size` keys (the oldest dropped first), computed in daemon threads."""

    def __init__(self, size: int) -> None:
        """An empty cache of at most `size` keys."""
        self.size = size
        self._lock = threading.Lock()
        self._done: dict[Hashable, tuple[Hashable, int, Snapshot[T]]] = {}  # key -> (version, start, snapshot)
        self._starts = count()  # a later start holds later data: an earlier one finishing last is not kept
        self._running: dict[Hashable, tuple[Hashable, Future[Snapshot[T]]]] = {}  # key -> (version, future)

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], T],
            wait: float | None) -> Snapshot[T]:
        """The snapshot of `key` for `version` (see the module docstring); `wait`: seconds to wait for
        a new computation before an older snapshot is shown (None: wait for one of `version`)."""
        with self._lock:
            done = self._done.get(key)
            if done is not None and done[0] == version:
                return done[2]
            running = self._running.get(key)
            if running is not None and (running[0] == version or wait is not None):
                future = running[1]  # one computation per key at a time for pages, however many ask
                same = running[0] == version
            else:
                future, same = Future(), True
                self._running[key] = (version, future)
                threading.Thread(target=self._compute, args=(key, version, next(self._starts), compute, future),
                                 name="report", daemon=True).start()
        older = done[2] if done is not None else None
        try:
            snapshot = future.result(timeout=None if older is None or wait is None else wait)
        except FutureTimeout:
            assert older is not None
            return Snapshot(older.value, older.computed_at, fresh=False)
        return snapshot if same else Snapshot(snapshot.value, snapshot.computed_at, fresh=False)

    def _compute(self, key: Hashable, version: Hashable, start: int, compute: Callable[[], T],
                 future: Future[Snapshot[T]]) -> None:
        """Run `compute`, keep its snapshot for (key, version) and hand it (or its error) to the waiters."""
        try:
            snapshot = Snapshot(compute(), time.time(), fresh=True)
        except BaseException as exc:  # handed to the callers waiting; with none waiting only logged
            with self._lock:
                if self._running.get(key, (None, None))[1] is future:
                    del self._running[key]
            future.set_exception(exc)
            log.warning("report %r could not be computed: %s", key, exc)
            return
        with self._lock:
            if self._running.get(key, (None, None))[1] is future:
                del self._running[key]
            kept = self._done.get(key)
            if kept is None or kept[1] < start:
                self._done.pop(key, None)
                while len(self._done) >= self.size:
                    self._done.pop(next(iter(self._done)))
                self._done[key] = (version, start, snapshot)
        future.set_result(snapshot)

    def clear(self) -> None:
        """Forget every snapshot (computations under way still finish and are kept)."""
        with self._lock:
            self._done.clear()
