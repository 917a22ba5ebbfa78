"""What the text channels (WeChat, WeCom) keep in the state database, so that any `ohbot serve`
process can take any callback: which messages were already taken (and the passive reply given),
the platform access tokens with their single refresher, and each user's last buttons.

The tables are in bot/storage/schema.py; the SQL here is portable (INSERT … ON CONFLICT DO NOTHING,
conditional UPDATEs whose row count says who won), so the same logic holds on PostgreSQL.
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

from bot.dialogue.types import Button
from bot.errors import OhbotError
from bot.storage.state import State, now

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
        with self.state.lock:
            conn = self.state.db.conn
            taken = conn.execute(
                "INSERT INTO channel_inbox (channel, msg_key, received_at, reply) VALUES (?, ?, ?, NULL) "
                "ON CONFLICT (channel, msg_key) DO NOTHING", [channel, key, stamp]).rowcount == 1
            if not taken:
                taken = conn.execute(
                    "UPDATE channel_inbox SET received_at = ? WHERE channel = ? AND msg_key = ? "
                    "AND reply IS NULL AND received_at < ?",
                    [stamp, channel, key, stamp - ABANDONED_AFTER]).rowcount == 1
            self._claims += 1
            if self._claims % INBOX_PRUNE_EVERY == 0:
                conn.execute("DELETE FROM channel_inbox WHERE received_at < ?", [stamp - INBOX_KEEP_SECONDS])
        return taken

    def set_reply(self, channel: str, key: str, reply: str) -> None:
        """Remember the passive reply given to a message."""
        with self.state.lock:
            self.state.db.conn.execute("UPDATE channel_inbox SET reply = ? WHERE channel = ? AND msg_key = ?",
                                       [reply, channel, key])

    def reply(self, channel: str, key: str) -> str | None:
        """The passive reply given to a message, None while it is being answered (or never was)."""
        with self.state.lock:
            row = self.state.db.conn.execute("SELECT reply FROM channel_inbox WHERE channel = ? AND msg_key = ?",
                                             [channel, key]).fetchone()
        return row[0] if row else None


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
        with self.state.lock:
            row = self.state.db.conn.execute(
                "SELECT token, refresh_at, expires_at FROM access_tokens WHERE name = ?", [name]).fetchone()
        return (row[0], row[1], row[2]) if row else (None, 0, 0)

    def _claim(self, name: str, stamp: int) -> bool:
        """Take the refresh lease of `name` if nobody holds it (or theirs ran out)."""
        with self.state.lock:
            conn = self.state.db.conn
            conn.execute("INSERT INTO access_tokens (name, token, refresh_at, expires_at, lease_owner, lease_until) "
                         "VALUES (?, NULL, 0, 0, NULL, 0) ON CONFLICT (name) DO NOTHING", [name])
            return conn.execute(
                "UPDATE access_tokens SET lease_owner = ?, lease_until = ? WHERE name = ? AND lease_until < ?",
                [self.owner, stamp + self.lease_seconds, name, stamp]).rowcount == 1

    def _store(self, name: str, token: str, stamp: int, ttl: int) -> None:
        """Save a fetched token and give the lease back."""
        margin = min(self.margin, ttl // 4)
        with self.state.lock:
            self.state.db.conn.execute(
                "UPDATE access_tokens SET token = ?, refresh_at = ?, expires_at = ?, lease_owner = NULL, "
                "lease_until = 0 WHERE name = ? AND lease_owner = ?",
                [token, stamp + ttl - margin, stamp + ttl, name, self.owner])

    def _release(self, name: str) -> None:
        """Give the lease back without a new token (the fetch failed)."""
        with self.state.lock:
            self.state.db.conn.execute(
                "UPDATE access_tokens SET lease_owner = NULL, lease_until = 0 WHERE name = ? AND lease_owner = ?",
                [name, self.owner])

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
        with self.state.lock:
            row = self.state.db.conn.execute('SELECT buttons FROM text_menus WHERE "user" = ?', [user_key]).fetchone()
        return [Button(label, data) for label, data in json.loads(row[0])] if row else []

    def set(self, user_key: str, buttons: list[Button]) -> None:
        """Replace them; an empty list deletes the row."""
        with self.state.lock:
            conn = self.state.db.conn
            if not buttons:
                conn.execute('DELETE FROM text_menus WHERE "user" = ?', [user_key])
                return
            data = json.dumps([[b.label, b.data] for b in buttons], ensure_ascii=False)
            conn.execute('INSERT INTO text_menus ("user", buttons, updated) VALUES (?, ?, ?) '
                         'ON CONFLICT ("user") DO UPDATE SET buttons = excluded.buttons, updated = excluded.updated',
                         [user_key, data, now()])
