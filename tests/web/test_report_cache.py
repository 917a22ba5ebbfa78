"""The console's report cache (bot/web/report_cache.py): one computation per key at a time, the
previous snapshot shown while a slow one runs, errors handed to the waiters and retried, and an
older computation finishing last never replacing a newer one. Computations are held back by events,
so every interleaving here is fixed by the test, not by timing."""
from __future__ import annotations

import threading

import pytest

from bot.web.report_cache import ReportCache


class Gated:
    """A computation returning `value` once its gate is open, counting its calls."""

    def __init__(self, value: object, open_: bool = True) -> None:
        self.value = value
        self.gate = threading.Event()
        self.started = threading.Event()
        self.calls = 0
        if open_:
            self.gate.set()

    def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        assert self.gate.wait(30)
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def test_the_first_view_waits_and_the_same_version_is_kept() -> None:
    cache: ReportCache[object] = ReportCache(4)
    compute = Gated("v1")
    first = cache.get("k", 1, compute, wait=0.0)  # nothing older to show: it waits however long
    assert (first.value, first.fresh) == ("v1", True)
    again = cache.get("k", 1, Gated("other"), wait=0.0)
    assert again is first and compute.calls == 1


def test_new_data_not_ready_in_time_shows_the_previous_snapshot_then_the_new_one() -> None:
    cache: ReportCache[object] = ReportCache(4)
    first = cache.get("k", 1, Gated("v1"), wait=0.0)
    slow = Gated("v2", open_=False)
    shown = cache.get("k", 2, slow, wait=0.05)
    assert (shown.value, shown.fresh, shown.computed_at) == ("v1", False, first.computed_at)
    # another page meanwhile: the same computation, not a second one
    assert cache.get("k", 2, Gated("v2 again"), wait=0.0).value == "v1" and slow.calls == 1
    slow.gate.set()
    done = cache.get("k", 2, Gated("unused"), wait=None)
    assert (done.value, done.fresh) == ("v2", True)
    assert cache.get("k", 2, Gated("unused"), wait=0.0) is done


def test_a_download_waits_for_its_own_version() -> None:
    cache: ReportCache[object] = ReportCache(4)
    cache.get("k", 1, Gated("v1"), wait=0.0)
    slow = Gated("v2", open_=False)
    got_v2: list[object] = []
    waiter = threading.Thread(target=lambda: got_v2.append(cache.get("k", 2, slow, wait=None)))
    waiter.start()  # a download of v2, under way
    assert slow.started.wait(30)
    assert cache.get("k", 2, Gated("unused"), wait=0.0).value == "v1"  # a page meanwhile: the previous
    got = cache.get("k", 3, Gated("v3"), wait=None)  # a download of newer data computes its own
    assert (got.value, got.fresh) == ("v3", True)
    slow.gate.set()
    waiter.join(30)
    assert got_v2[0].value == "v2" and slow.calls == 1
    # v2 finished after v3 but started before it: v3 stays the kept snapshot
    assert cache.get("k", 3, Gated("unused"), wait=0.0).value == "v3"


def test_a_page_asking_while_an_older_version_computes_is_given_that_one_marked_not_fresh() -> None:
    cache: ReportCache[object] = ReportCache(4)
    slow = Gated("v1", open_=False)
    waiter = threading.Thread(target=cache.get, args=("k", 1, slow, None))
    waiter.start()
    assert slow.started.wait(30)
    threading.Timer(0.05, slow.gate.set).start()
    got = cache.get("k", 2, Gated("v2"), wait=0.0)  # nothing older kept yet: waits for v1's
    assert (got.value, got.fresh) == ("v1", False)
    waiter.join(30)
    assert cache.get("k", 2, Gated("v2"), wait=None).value == "v2"  # the next view computes v2


def test_an_error_reaches_the_waiters_and_the_next_view_tries_again() -> None:
    cache: ReportCache[object] = ReportCache(4)
    with pytest.raises(RuntimeError, match="database went away"):
        cache.get("k", 1, Gated(RuntimeError("database went away")), wait=0.0)
    assert cache.get("k", 1, Gated("v1"), wait=0.0).value == "v1"


def test_at_most_size_keys_are_kept_the_oldest_dropped_first() -> None:
    cache: ReportCache[object] = ReportCache(2)
    for key in ("a", "b", "c"):
        cache.get(key, 1, Gated(key), wait=None)
    again = Gated("a again")
    assert cache.get("a", 1, again, wait=None).value == "a again" and again.calls == 1
    kept = Gated("unused")
    assert cache.get("c", 1, kept, wait=None).value == "c" and kept.calls == 0


class MemoryStore:
    """A SnapshotStore in a dict (the console's is a database table: tests/web/test_console.py)."""

    def __init__(self) -> None:
        self.rows: dict[object, tuple[object, float, object]] = {}

    def load(self, key):
        return self.rows.get(key)

    def save(self, key, version, computed_at, value) -> None:
        self.rows[key] = (version, computed_at, value)


def test_a_new_cache_starts_from_the_stored_snapshot() -> None:
    store = MemoryStore()
    first: ReportCache[object] = ReportCache(4, store)
    kept = first.get("k", 1, Gated("v1"), wait=None)
    assert store.rows["k"] == (1, kept.computed_at, "v1")
    again: ReportCache[object] = ReportCache(4, store)  # another process
    unused = Gated("unused")
    assert again.get("k", 1, unused, wait=0.0).value == "v1" and unused.calls == 0
    slow = Gated("v2", open_=False)
    shown = again.get("k", 2, slow, wait=0.0)
    assert (shown.value, shown.fresh, shown.computed_at) == ("v1", False, kept.computed_at)
    slow.gate.set()
    assert again.get("k", 2, Gated("unused"), wait=None).value == "v2"
    assert store.rows["k"][0] == 2


def test_a_store_that_fails_is_worked_around() -> None:
    class Broken:
        def load(self, key):
            raise OSError("disk gone")

        def save(self, key, version, computed_at, value) -> None:
            raise OSError("disk gone")

    cache: ReportCache[object] = ReportCache(4, Broken())
    assert cache.get("k", 1, Gated("v1"), wait=0.0).value == "v1"
    assert cache.get("k", 1, Gated("unused"), wait=0.0).value == "v1"
