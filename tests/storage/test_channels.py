"""The text channels' shared state (bot/storage/channels.py): de-duplication, access tokens with one
refresher, and stored menus. Two `State` objects on one database stand for two `ohbot serve` processes
(each has its own engine and connections, so the database's own locking is what is tested), on a
SQLite file and on PostgreSQL."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.dialogue.types import Button
from bot.storage.channels import ABANDONED_AFTER, DbMenus, Inbox, TokenStore, TokenUnavailable
from bot.storage.state import State


class Clock:
    """A settable epoch clock."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def two_processes(state_url):
    return State(state_url, "salt"), State(state_url, "salt")


def test_a_message_is_claimed_once_across_processes(two_processes):
    clock = Clock()
    inboxes = [Inbox(state, clock) for state in two_processes]
    with ThreadPoolExecutor(16) as pool:
        wins = list(pool.map(lambda i: inboxes[i % 2].claim("wechat", "6172839405"), range(32)))
    assert wins.count(True) == 1
    assert inboxes[0].claim("wecom", "6172839405")  # channels are separate
    assert inboxes[1].reply("wechat", "6172839405") is None
    inboxes[0].set_reply("wechat", "6172839405", "答案")
    assert inboxes[1].reply("wechat", "6172839405") == "答案"


def test_a_claim_without_reply_is_taken_over_after_its_process_died(two_processes):
    clock = Clock()
    first, second = (Inbox(state, clock) for state in two_processes)
    assert first.claim("wechat", "1")
    assert not second.claim("wechat", "1")
    clock.t += ABANDONED_AFTER + 1
    assert second.claim("wechat", "1")  # nobody answered: the retry is answered here
    assert not first.claim("wechat", "1")
    second.set_reply("wechat", "1", "ok")
    clock.t += ABANDONED_AFTER + 1
    assert not first.claim("wechat", "1")  # answered messages are never taken again


class Platform:
    """A token endpoint that, like the Official Account's, issues a new token per call."""

    def __init__(self, ttl: int = 7200) -> None:
        self.ttl, self.issued, self.fail = ttl, [], False
        self.lock = threading.Lock()

    def fetch(self) -> tuple[str, int]:
        with self.lock:
            if self.fail:
                raise RuntimeError("errcode -1: system busy")
            self.issued.append(f"T{len(self.issued) + 1}")
            return self.issued[-1], self.ttl


def test_concurrent_callers_in_two_processes_fetch_one_token(two_processes):
    clock, platform = Clock(), Platform()
    stores = [TokenStore(state, clock=clock) for state in two_processes]
    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(lambda i: stores[i % 2].get("wechat:app", platform.fetch), range(40)))
    assert platform.issued == ["T1"] and set(tokens) == {"T1"}


def test_refresh_before_expiry_and_after_a_refusal(two_processes):
    clock, platform = Clock(), Platform(ttl=7200)
    a, b = (TokenStore(state, clock=clock) for state in two_processes)
    assert a.get("n", platform.fetch) == "T1"
    clock.t += 7200 - 299  # inside the last 5 minutes: due for refresh
    assert b.get("n", platform.fetch) == "T2"
    assert a.get("n", platform.fetch) == "T2" and platform.issued == ["T1", "T2"]
    # the platform refuses the current token (someone fetched one elsewhere): many callers in both
    # processes report it at once; one of them refreshes, once (ten rounds, to give races a chance)
    for n in range(3, 13):
        refused = f"T{n - 1}"
        with ThreadPoolExecutor(8) as pool:
            tokens = list(pool.map(lambda i, r=refused: (a, b)[i % 2].get("n", platform.fetch, invalid=r), range(16)))
        assert len(platform.issued) == n and set(tokens) == {f"T{n}"}  # one refresh, not sixteen
    short = Platform(ttl=60)  # a short-lived token is refreshed in its last quarter, not every call
    assert a.get("short", short.fetch) == "T1" and a.get("short", short.fetch) == "T1"


def test_failed_refresh_keeps_a_valid_token_and_reports_a_missing_one(two_processes):
    clock, platform = Clock(), Platform()
    store = TokenStore(two_processes[0], clock=clock, sleep=lambda s: None)
    assert store.get("n", platform.fetch) == "T1"
    clock.t += 7000  # due, still valid
    platform.fail = True
    assert store.get("n", platform.fetch) == "T1"
    clock.t += 300  # expired
    with pytest.raises(TokenUnavailable, match="system busy"):
        store.get("n", platform.fetch)


def test_lease_holder_elsewhere_means_wait_or_use_the_old_token(two_processes):
    clock, platform = Clock(), Platform()
    a, b = (TokenStore(state, clock=clock, sleep=lambda s: None) for state in two_processes)
    assert a.get("n", platform.fetch) == "T1"
    clock.t += 7000
    assert a._claim("n", int(clock.t))  # process A is (slowly) refreshing
    assert b.get("n", platform.fetch) == "T1" and platform.issued == ["T1"]  # B keeps using T1
    clock.t += 500  # T1 expired, A's lease still running? no: 30 s leases run out; B takes over
    assert b.get("n", platform.fetch) == "T2"
    assert a._claim("n", int(clock.t))
    with pytest.raises(TokenUnavailable, match="lease"):
        b.get("n", platform.fetch, invalid="T2", timeout=0.0)


def test_menus_round_trip_and_are_forgotten_with_the_user(two_processes):
    first, second = two_processes
    menus = DbMenus(first)
    buttons = [Button("劳动者", "role:worker"), Button("用人单位", "role:employer")]
    menus.set("user-1", buttons)
    assert DbMenus(second).get("user-1") == buttons  # another process reads them
    menus.set("user-1", buttons[:1])
    assert menus.get("user-1") == buttons[:1]
    second.forget("user-1")
    assert menus.get("user-1") == []
    menus.set("user-2", buttons)
    menus.set("user-2", [])
    assert menus.get("user-2") == []


@pytest.mark.postgres
def test_a_users_turn_is_one_lock_and_its_record_released_together(pg_url, pg_admin, engine_for) -> None:
    """Two webhook workers and one user's update (bot/storage/channels.py begin_turn/end_turn): the
    second waits while the first handles it; once the first has ended its turn the second gets the
    lock and sees the update handled (a retried delivery is not answered twice)."""
    from sqlalchemy import text

    from bot.storage import migrate
    from bot.storage.channels import begin_turn, end_turn, was_handled
    from bot.storage.db import release_lock

    migrate.upgrade(engine_for(pg_url))
    first, second = State(pg_url, "salt"), State(pg_url, "salt")
    try:
        turn = begin_turn(first, "ohbot:user:u1", "telegram", "100")
        assert turn is not None and turn[1] is False
        assert begin_turn(second, "ohbot:user:u1", "telegram", "100") is None  # the user's lock is taken
        other = begin_turn(second, "ohbot:user:u2", "telegram", "200")  # another user's is not
        assert other is not None
        release_lock(other[0])
        assert not was_handled(second, "telegram", "100")
        end_turn(first, turn[0], "telegram", "100")
        again = begin_turn(second, "ohbot:user:u1", "telegram", "100")
        assert again is not None and again[1] is True  # handled: the retry is confirmed, not answered
        release_lock(again[0])

        # the lock's connection dies while the update is handled (pg_terminate_backend, a restart):
        # the record is still written, on a fresh connection
        turn = begin_turn(first, "ohbot:user:u1", "telegram", "101")
        assert turn is not None
        pid = turn[0].execute(text("select pg_backend_pid()")).scalar_one()
        with pg_admin.begin() as conn:
            conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        end_turn(first, turn[0], "telegram", "101")
        assert was_handled(second, "telegram", "101")
        later = begin_turn(second, "ohbot:user:u1", "telegram", "102")  # and the lock died with it
        assert later is not None and later[1] is False
        release_lock(later[0])
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_turn_reads_the_user_as_the_previous_turn_left_it(pg_url, engine_for) -> None:
    """begin_turn reads the user's stored state with the lock, in the same round trip: a user never seen
    is a new User; the next turn of the same user, in another worker, sees what the previous turn
    saved and recorded before it released the lock."""
    from bot.storage import migrate
    from bot.storage.channels import begin_turn, end_turn
    from bot.storage.db import release_lock
    from bot.storage.state import User

    migrate.upgrade(engine_for(pg_url))
    first, second = State(pg_url, "salt"), State(pg_url, "salt")
    try:
        turn = begin_turn(first, "ohbot:user:u9", "telegram", "900", "u9")
        assert turn is not None and turn[1] is False and turn[2] == User(key="u9")
        first.save_user(User(key="u9", profile={"role": "worker", "region": "广东省"}, pending={"step": "fb_reason"},
                             consent=True))
        assert begin_turn(second, "ohbot:user:u9", "telegram", "901", "u9") is None  # still held
        end_turn(first, turn[0], "telegram", "900")
        turn = begin_turn(second, "ohbot:user:u9", "telegram", "901", "u9")
        assert turn is not None and turn[1] is False
        user = turn[2]
        assert user is not None and (user.role, user.profile["region"], user.pending, user.consent) == (
            "worker", "广东省", {"step": "fb_reason"}, True)
        release_lock(turn[0])
        handled = begin_turn(second, "ohbot:user:u9", "telegram", "900")  # no user asked for: None
        assert handled is not None and handled[1:] == (True, None)
        release_lock(handled[0])
    finally:
        first.close()
        second.close()
