"""What the text channels (WeChat, WeCom) keep in the state database, so that any `ohbot serve`
process can take any callback: which messages were already taken (and the passive reply given),
the platform access tokens with their single refresher, and each user's last buttons.

The tables are in bot/storage/tables.py; the statements are SQLAlchemy Core on the state engine
(INSERT … ON CONFLICT DO NOTHING, conditional UPDATEs whose row count says who won), so the same
logic holds on SQLite and PostgreSQL, across any number of processes.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from bot.dialogue.types import Button
from bot.errors import DatabaseUnavailable, OhbotError
from bot.storage.db import autocommit, hold_lock, insert_ignore, pipelined, release_lock, upsert, upsert_statement
from bot.storage.state import GET_USER, State, User, now, user_from_row
from bot.storage.tables import access_tokens, channel_inbox, text_menus

log = logging.getLogger(__name__)

INBOX_KEEP_SECONDS = 2 * 24 * 3600  # WeChat retries within seconds; two days is plenty
INBOX_PRUNE_EVERY = 1000  # claims between two prunes
ABANDONED_AFTER = 20  # seconds: a claim without a reply this old was lost with its process


class TokenUnavailable(OhbotError, RuntimeError):
    """No access token could be obtained (the platform refused, or another process holds the lease
    and no valid token exists)."""


class Inbox:
    """De-duplication of callbacks across processes: the first process to claim a message key
    answers it; a retry gets the passive reply given to the first delivery, never a second answer."""

    def __init__(self, state: State, clock: Callable[[], float] = time.time) -> None:
        """Over the state database; `clock` gives epoch seconds (tests move it)."""
        self.state = state
        self.clock = clock
        self._claims = 0

    def claim(self, channel: str, key: str) -> bool:
        """True if this caller takes the message: it is new, or an earlier claim got no reply for
        ABANDONED_AFTER seconds (its process died). False: a duplicate, answered elsewhere."""
        stamp = int(self.clock())
        inbox = channel_inbox.c
        with self.state.write() as conn:
            taken = insert_ignore(conn, channel_inbox, {"channel": channel, "msg_key": key, "received_at": stamp,
                                                        "reply": None}, on=["channel", "msg_key"]) == 1
            if not taken:
                taken = conn.execute(
                    update(channel_inbox).where(inbox.channel == channel, inbox.msg_key == key, inbox.reply.is_(None),
                                                inbox.received_at < stamp - ABANDONED_AFTER)
                    .values(received_at=stamp)).rowcount == 1
            self._claims += 1
            if self._claims % INBOX_PRUNE_EVERY == 0:
                conn.execute(delete(channel_inbox).where(inbox.received_at < stamp - INBOX_KEEP_SECONDS))
        return taken

    def set_reply(self, channel: str, key: str, reply: str) -> None:
        """Remember the passive reply given to a message."""
        inbox = channel_inbox.c
        with self.state.write() as conn:
            conn.execute(update(channel_inbox).where(inbox.channel == channel, inbox.msg_key == key)
                         .values(reply=reply))

    def reply(self, channel: str, key: str) -> str | None:
        """The passive reply given to a message, None while it is being answered (or never was)."""
        inbox = channel_inbox.c
        with self.state.read() as conn:
            return conn.execute(select(inbox.reply).where(inbox.channel == channel, inbox.msg_key == key)).scalar()


class TokenStore:
    """Platform access tokens in the database, refreshed by one process at a time.

    WeChat invalidates an Official Account's token when a new one is fetched (after a grace of
    5 minutes), so processes must not each fetch their own. `get` returns the stored token while it
    is fresh; when it is due (`refresh_at`, a margin before it expires) or known to be invalid, the
    caller that wins the lease (a conditional UPDATE) fetches a new one while everybody else keeps
    using the old one, or waits for the new one if the old one has expired."""

    def __init__(self, state: State, *, margin: int = 300, lease_seconds: int = 30,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        """`margin`: refresh this many seconds before expiry (at most a quarter of the token's life)."""
        self.state = state
        self.margin = margin
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.sleep = sleep
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _row(self, name: str) -> tuple[str | None, int, int]:
        """(token, refresh_at, expires_at) of `name`; (None, 0, 0) if there is none."""
        t = access_tokens.c
        with self.state.read() as conn:
            row = conn.execute(select(t.token, t.refresh_at, t.expires_at).where(t.name == name)).first()
        return (row[0], row[1], row[2]) if row else (None, 0, 0)

    def _claim(self, name: str, stamp: int) -> bool:
        """Take the refresh lease of `name` if nobody holds it (or theirs ran out)."""
        t = access_tokens.c
        with self.state.write() as conn:
            insert_ignore(conn, access_tokens, {"name": name, "token": None, "refresh_at": 0, "expires_at": 0,
                                                "lease_owner": None, "lease_until": 0}, on=["name"])
            return conn.execute(
                update(access_tokens).where(t.name == name, t.lease_until < stamp)
                .values(lease_owner=self.owner, lease_until=stamp + self.lease_seconds)).rowcount == 1

    def _store(self, name: str, token: str, stamp: int, ttl: int) -> None:
        """Save a fetched token and give the lease back."""
        margin = min(self.margin, ttl // 4)
        t = access_tokens.c
        with self.state.write() as conn:
            conn.execute(update(access_tokens).where(t.name == name, t.lease_owner == self.owner)
                         .values(token=token, refresh_at=stamp + ttl - margin, expires_at=stamp + ttl,
                                 lease_owner=None, lease_until=0))

    def _release(self, name: str) -> None:
        """Give the lease back without a new token (the fetch failed)."""
        t = access_tokens.c
        with self.state.write() as conn:
            conn.execute(update(access_tokens).where(t.name == name, t.lease_owner == self.owner)
                         .values(lease_owner=None, lease_until=0))

    def _lock(self, name: str) -> threading.Lock:
        """One lock per token name in this process: its threads queue instead of polling the database."""
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    def get(self, name: str, fetch: Callable[[], tuple[str, int]], invalid: str | None = None,
            timeout: float = 30.0) -> str:
        """A valid token for `name`. `fetch()` returns (token, seconds valid) from the platform and is
        called only by the lease holder; `invalid` is a token the platform just refused (so a fresh
        one is needed even if the row says it is still valid)."""
        deadline = time.monotonic() + timeout
        with self._lock(name):
            while True:
                stamp = int(self.clock())
                token, refresh_at, expires_at = self._row(name)
                usable = bool(token) and token != invalid and expires_at > stamp
                if usable and stamp < refresh_at:
                    return token  # type: ignore[return-value]
                if self._claim(name, stamp):
                    fresh, refresh_at, expires_at = self._row(name)  # refreshed between our read and claim?
                    if fresh and fresh != invalid and fresh != token and stamp < refresh_at and expires_at > stamp:
                        self._release(name)
                        return fresh
                    try:
                        new, ttl = fetch()
                    except Exception as exc:
                        self._release(name)
                        if usable:
                            log.warning("refreshing the %s token failed (%s); the current one is still valid",
                                        name, exc)
                            return token  # type: ignore[return-value]
                        raise TokenUnavailable(f"could not get an access token for {name}: {exc}") from exc
                    self._store(name, new, stamp, int(ttl))
                    return new
                if usable:
                    return token  # type: ignore[return-value]  # another process is refreshing it
                if time.monotonic() > deadline:
                    raise TokenUnavailable(f"no valid access token for {name}: another process holds the lease")
                self.sleep(0.1)


class DbMenus:
    """Each user's last buttons (bot/channels/text_menu.py) in the database: the next message may
    reach another process. Keyed by the salted user key; /forget removes them with the user."""

    def __init__(self, state: State) -> None:
        """Over the state database."""
        self.state = state

    def get(self, user_key: str) -> list[Button]:
        """The buttons last offered to the user (empty if none)."""
        with self.state.read() as conn:
            stored = conn.execute(select(text_menus.c.buttons).where(text_menus.c.user == user_key)).scalar()
        return [Button(label, data) for label, data in json.loads(stored)] if stored else []

    def set(self, user_key: str, buttons: list[Button]) -> None:
        """Replace them; an empty list deletes the row."""
        with self.state.write() as conn:
            if not buttons:
                conn.execute(delete(text_menus).where(text_menus.c.user == user_key))
                return
            data = json.dumps([[b.label, b.data] for b in buttons], ensure_ascii=False)
            upsert(conn, text_menus, {"user": user_key, "buttons": data, "updated": now()}, on=["user"])


def was_handled(state: State, channel: str, key: str) -> bool:
    """Whether a platform update (Telegram update_id) was handled to the end by some process."""
    with autocommit(state.engine, write=False) as conn:
        return _handled(conn, channel, key)


_HANDLED = select(channel_inbox.c.reply).where(channel_inbox.c.channel == bindparam("channel"),
                                               channel_inbox.c.msg_key == bindparam("key"))


def _handled(conn: Connection, channel: str, key: str) -> bool:
    return conn.execute(_HANDLED, {"channel": channel, "key": key}).scalar() is not None


def _handled_row(channel: str, key: str, clock: Callable[[], float]) -> dict:
    return {"channel": channel, "msg_key": key, "received_at": int(clock()), "reply": ""}


def mark_handled(state: State, channel: str, key: str, clock: Callable[[], float] = time.time) -> None:
    """Record that a platform update was handled (its replies sent): a retried delivery, whichever
    process it reaches, is then confirmed without a second answer. Rows older than
    INBOX_KEEP_SECONDS are pruned by Inbox.claim's periodic DELETE over the same table."""
    with autocommit(state.engine, write=True) as conn:  # one statement: one round trip on PostgreSQL
        upsert(conn, channel_inbox, _handled_row(channel, key, clock), on=["channel", "msg_key"], update=["reply"])


def begin_turn(state: State, lock: str, channel: str, key: str,
               user_key: str | None = None) -> tuple[Connection, bool, User | None] | None:
    """PostgreSQL, a webhook worker about to handle update `key` of one user: take the user's lock
    (`hold_lock`: held by the returned connection's transaction) and, in the same round trip, once
    it is held, ask whether the update was handled already (by another worker: a retried delivery)
    and read the user `user_key`'s stored state (for the dialogue). None, with nothing held, when
    another process holds the lock; else (the connection, handled?, the user or None when no
    `user_key`). Give the connection to `end_turn`, or to `release_lock` when the handling failed."""
    reads: list[tuple[Any, dict[str, Any]]] = [(_HANDLED, {"channel": channel, "key": key})]
    if user_key is not None:
        reads.append((GET_USER, {"user_key": user_key}))
    turn = hold_lock(state.engine, lock, reads)
    if turn is None:
        return None
    held, rows = turn
    return held, rows[0] is not None, None if user_key is None else user_from_row(user_key, rows[1])


_MARK_HANDLED = upsert_statement("postgresql", channel_inbox, ["channel", "msg_key"], ["reply"])


def end_turn(state: State, held: Connection, channel: str, key: str, clock: Callable[[], float] = time.time) -> None:
    """The update of `begin_turn` was handled: record it in the lock's own transaction and commit, in
    one round trip; the commit makes the record visible and releases the lock at once (whoever takes
    the lock next sees it). A lock connection lost meanwhile (its lock went with it) is replaced: the
    record is written on a fresh connection, as `mark_handled` does; DatabaseUnavailable when that
    fails too."""
    try:
        pipelined(held, [(_MARK_HANDLED, _handled_row(channel, key, clock))], commit=True)
    except DatabaseUnavailable:
        release_lock(held)
        mark_handled(state, channel, key, clock)
        return
    except BaseException:
        release_lock(held)
        raise
    release_lock(held)
