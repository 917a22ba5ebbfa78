"""The bot's own database (DATA_DIR/ohbot.db): user profiles and pending dialogue steps, and the
questions it could not answer. Never rebuilt, never holds a raw chat id: users are stored under a
salted hash, so a restart or a second worker process loses nothing and reports identify no one.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from bot.storage.schema import ADDED_COLUMNS, PROFILE_FIELDS, TABLES
from bot.text.normalize import normalize


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class User:
    key: str  # salted hash of "channel:id"
    profile: dict[str, str | None] = field(default_factory=dict)
    pending: dict = field(default_factory=dict)  # the step a multi-step dialogue waits on
    consent: bool = False

    @property
    def role(self) -> str | None:
        return self.profile.get("role")


def load_salt(data_dir: Path, configured: str | None) -> str:
    """The configured salt, else one generated once and kept in the data directory."""
    if configured:
        return configured
    path = data_dir / "salt"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_hex(16)
    path.write_text(salt, encoding="utf-8")
    return salt


def gap_key(question: str) -> str:
    """Questions that differ only in script, width, case, spaces or punctuation count as one."""
    return re.sub(r"[\W_]+", "", normalize(question))[:500]


class State:
    """Thread-safe access to ohbot.db (one connection, one lock; WAL so readers do not wait)."""

    def __init__(self, path: Path, salt: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.salt = salt
        self.lock = threading.RLock()
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    def _migrate(self) -> None:
        """Apply the one schema (bot/storage/schema.py), adding columns older databases lack; idempotent."""
        with self.lock:
            for statement in TABLES:
                self.db.conn.execute(statement)
            for table, column, kind in ADDED_COLUMNS:
                present = {row[1] for row in self.db.conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    self.db.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: this process's lock, then BEGIN IMMEDIATE, which also serialises
        writers in other processes; committed on leaving the block, rolled back on any exception.
        Reads inside see a state no other writer can change before the commit."""
        with self.lock:
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def user_key(self, channel: str, user_id: int | str) -> str:
        return hashlib.sha256(f"{self.salt}:{channel}:{user_id}".encode()).hexdigest()[:32]

    # get_user and save_user are on every message's path: plain SQL, no table introspection
    def get_user(self, key: str) -> User:
        columns = ", ".join(PROFILE_FIELDS)
        with self.lock:
            row = self.db.conn.execute(
                f"select {columns}, pending, consent from users where key = ?", [key]).fetchone()
        if row is None:
            return User(key=key)
        profile = dict(zip(PROFILE_FIELDS, row[: len(PROFILE_FIELDS)]))
        return User(key=key, profile=profile, pending=json.loads(row[-2] or "{}"), consent=bool(row[-1]))

    def save_user(self, user: User) -> None:
        values = [user.profile.get(f) for f in PROFILE_FIELDS]
        pending = json.dumps(user.pending, ensure_ascii=False)
        stamp = now()
        assignments = ", ".join(f"{f} = excluded.{f}" for f in PROFILE_FIELDS)
        with self.lock:
            self.db.conn.execute(
                f"insert into users (key, {', '.join(PROFILE_FIELDS)}, consent, pending, created, updated) "
                f"values (?, {', '.join('?' * len(PROFILE_FIELDS))}, ?, ?, ?, ?) "
                f"on conflict(key) do update set {assignments}, consent = excluded.consent, "
                "pending = excluded.pending, updated = excluded.updated",
                [user.key, *values, int(user.consent), pending, stamp, stamp])

    def forget(self, key: str) -> None:
        """Delete everything stored about one user (profile, logged questions, quiz data)."""
        with self.lock:
            for table in self.db.table_names():
                columns = {c.name for c in self.db[table].columns}
                if "user" in columns:
                    self.db[table].delete_where("user = ?", [key])
            if "users" in self.db.table_names():
                self.db["users"].delete_where("key = ?", [key])

    def log_unanswered(self, question: str, user: str | None) -> None:
        with self.lock:
            self.db.conn.execute(
                "insert into unanswered (question, norm, user, asked_at) values (?, ?, ?, ?)",
                [question[:500], gap_key(question), user, now()])

    def gaps(self, limit: int = 20) -> list[dict]:
        """The most frequent unanswered questions, normalised and de-duplicated."""
        with self.lock:
            rows = self.db.query(
                "select norm, count(*) as n, min(question) as example, max(asked_at) as last "
                "from unanswered group by norm order by n desc, last desc limit ?", [limit]
            )
            return list(rows)


def open_state(settings) -> State:
    """The state database of a data directory (`settings`: bot.config.Settings)."""
    return State(settings.state_db, load_salt(settings.data_dir, settings.salt))
