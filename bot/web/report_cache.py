"""The console's reports, kept per data version and refreshed in the background (stale-while-revalidate).

What: `ReportCache.get(key, version, compute, wait)` returns a `Snapshot` of `compute()`: the one made
for `version` when there is one; otherwise it starts `compute` in a background thread (one at a time
per key, however many pages ask) and waits up to `wait` seconds for it. When it is not
done by then and an older snapshot of the same key exists, that older one is returned, marked
`fresh=False` with the time it was computed, and the new one replaces it when done. With no older
snapshot or `wait=None` the caller waits for the computation. With a `store` (the console: table
report_snapshots of the state database) every computed snapshot is saved, and a key this process has
not computed yet starts from the stored one: a restarted worker, or another worker behind the load
balancer, shows the last computed figures at once (current, or marked with their time while it
computes), so only the very first computation of a report is waited for.

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
from dataclasses import dataclass, replace
from itertools import count
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("ohbot.console")

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """A computed value, the time it was computed (epoch seconds) and whether it is of the data
    version asked for (`fresh`) or an older one shown while the new one is computed."""

    value: T
    computed_at: float
    fresh: bool


class SnapshotStore(Protocol[T]):
    """Where snapshots outlive the process and are shared by workers (the console: a database table)."""

    def load(self, key: Hashable) -> tuple[Hashable, float, T] | None:
        """(version, computed_at, value) last saved for `key`, or None."""

    def save(self, key: Hashable, version: Hashable, computed_at: float, value: T) -> None:
        """Keep this snapshot of `key` (replacing the one saved before)."""


class ReportCache(Generic[T]):
    """Snapshots by key, at most `size` keys (the oldest dropped first), computed in daemon threads;
    with a `store`, a key this process has not computed yet starts from the stored snapshot (shown as
    the previous figures when its version is not the current one) and every computation is saved."""

    def __init__(self, size: int, store: SnapshotStore[T] | None = None) -> None:
        """An empty cache of at most `size` keys."""
        self.size = size
        self.store = store
        self._lock = threading.Lock()
        self._done: dict[Hashable, tuple[Hashable, int, Snapshot[T]]] = {}  # key -> (version, start, snapshot)
        self._starts = count()  # a later start holds later data: an earlier one finishing last is not kept
        self._running: dict[Hashable, tuple[Hashable, Future[Snapshot[T]]]] = {}  # key -> (version, future)

    def get(self, key: Hashable, version: Hashable, compute: Callable[[], T],
            wait: float | None) -> Snapshot[T]:
        """The snapshot of `key` for `version` (see the module docstring); `wait`: seconds to wait for
        a new computation before an older snapshot is shown (None: wait for one of `version`)."""
        if self.store is not None:
            with self._lock:
                known = key in self._done
            if not known:
                self._adopt(key)
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
            return replace(older, fresh=False)
        return snapshot if same else replace(snapshot, fresh=False)

    def _adopt(self, key: Hashable) -> None:
        """Take the stored snapshot of `key`, if any, as this process's (a store that fails is logged
        and treated as empty: the report is then computed as without one)."""
        assert self.store is not None
        try:
            stored = self.store.load(key)
        except Exception as exc:  # noqa: BLE001 - a cache: the report can always be computed instead
            log.warning("stored report %r not read: %s", key, exc)
            return
        if stored is None:
            return
        version, computed_at, value = stored
        with self._lock:
            if key not in self._done:  # start −1: any computation of this process is newer
                self._trim()
                self._done[key] = (version, -1, Snapshot(value, computed_at, fresh=True))

    def _trim(self) -> None:
        """Drop the oldest keys until one more fits (called with the lock held)."""
        while len(self._done) >= self.size:
            self._done.pop(next(iter(self._done)))

    def _compute(self, key: Hashable, version: Hashable, start: int, compute: Callable[[], T],
                 future: Future[Snapshot[T]]) -> None:
        """Run `compute`, keep its snapshot for (key, version) and hand it (or its error) to the waiters."""
        try:
            snapshot = Snapshot(compute(), time.time(), fresh=True)
        except BaseException as exc:  # handed to the callers waiting; with none waiting only logged
            with self._lock:
                self._finished(key, future)
            future.set_exception(exc)
            log.warning("report %r could not be computed: %s", key, exc)
            return
        with self._lock:
            self._finished(key, future)
            kept = self._done.get(key)
            newest = kept is None or kept[1] < start
            if newest:
                self._done.pop(key, None)
                self._trim()
                self._done[key] = (version, start, snapshot)
        if newest and self.store is not None:
            try:
                self.store.save(key, version, snapshot.computed_at, snapshot.value)
            except Exception as exc:  # noqa: BLE001 - the report is shown all the same
                log.warning("report %r not stored: %s", key, exc)
        future.set_result(snapshot)

    def _finished(self, key: Hashable, future: Future[Snapshot[T]]) -> None:
        """`future`'s computation of `key` is no longer running (called with the lock held); a newer one
        started for another version (a download) stays registered."""
        if self._running.get(key, (None, None))[1] is future:
            del self._running[key]
