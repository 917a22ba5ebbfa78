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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from bot.storage.schema import ADDED_COLUMNS, PROFILE_FIELDS, TABLES
from bot.text.normalize import normalize

_DIGITS = re.compile(r"\d{4,}")  # a phone, ID card or account number inside a question
FOLLOW_UP_SECONDS = 600  # a follow-up is read with the previous question only this long after it


def now() -> str:
    """The current time as stored (UTC, ISO 8601, seconds)."""
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
        conn.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages (/forget)
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
                    self.db.table(table).delete_where("user = ?", [key])
            if "users" in self.db.table_names():
                self.db.table("users").delete_where("key = ?", [key])
            # the deleted rows' old pages stay in ohbot.db-wal until a checkpoint: copy them back and empty it
            self.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def log_unanswered(self, question: str, user: str | None) -> None:
        with self.lock:
            self.db.conn.execute(
                "insert into unanswered (question, norm, user, asked_at) values (?, ?, ?, ?)",
                [question[:500], gap_key(question), user, now()])

    def gaps(self, limit: int = 20) -> list[dict]:
        """What the bot could not answer well, most frequent first: refused questions and questions
        whose answer got a 👎, together under one normalised key (`n` = refusals + 👎; the 👎
        reasons given, newest first)."""
        with self.lock:
            refused = {r["norm"]: r for r in self.db.query(
                "select norm, count(*) as n, min(question) as example, max(asked_at) as last "
                "from unanswered group by norm")}
            down = {r["norm"]: r for r in self.db.query(
                "select norm, count(*) as n, min(question) as example, max(created) as last "
                "from feedback where vote = 'down' group by norm")}
            reasons: dict[str, list[str]] = {}
            for r in self.db.query("select norm, reason from feedback where vote = 'down' and reason is not null "
                                   "and reason != '' order by created desc"):
                reasons.setdefault(r["norm"], []).append(r["reason"])
        rows = []
        for norm in set(refused) | set(down):
            a, b = refused.get(norm, {}), down.get(norm, {})
            rows.append({
                "norm": norm, "n": a.get("n", 0) + b.get("n", 0), "refused": a.get("n", 0), "down": b.get("n", 0),
                "example": a.get("example") or b.get("example"),
                "last": max(x for x in (a.get("last"), b.get("last")) if x), "reasons": reasons.get(norm, [])[:3],
            })
        rows.sort(key=lambda r: r["last"], reverse=True)  # then, among equally frequent, newest first
        rows.sort(key=lambda r: -r["n"])
        return rows[:limit]

    def unanswered_summary(self, limit: int = 5, min_users: int = 2) -> tuple[int, list[dict]]:
        """For /stats: how many questions were refused in all, and the most frequent of them as
        normalised text (`gap_key`) that at least `min_users` different users asked, with their
        counts ({"norm", "n", "users"}); runs of 4+ digits masked. A question only one person asked
        (it may hold a name or a phone number) is counted, never shown."""
        with self.lock:
            total = self.db.conn.execute("select count(*) from unanswered").fetchone()[0]
            rows = self.db.conn.execute(
                'select norm, count(*), count(distinct "user") from unanswered group by norm '
                'having count(distinct "user") >= ? order by count(*) desc, norm limit ?', [min_users, limit]).fetchall()
        return int(total), [{"norm": _DIGITS.sub("＊＊＊＊", norm), "n": int(n), "users": int(users)}
                            for norm, n, users in rows]

    # ---- answers, follow-ups and feedback ----------------------------------------------------------
    def log_answer(self, user: str | None, question: str, text: str, decision: str, door: str | None = None,
                   faq_id: str | None = None, confidence: float = 0.0) -> int:
        """Keep one reply to a question (so that 👍/👎 can name it); its id."""
        with self.lock:
            cur = self.db.conn.execute(
                "insert into answers (\"user\", question, norm, answer, decision, door, faq_id, confidence, asked_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [user, question[:500], gap_key(question), text, decision, door, faq_id, float(confidence), now()])
            return int(cur.lastrowid or 0)

    def get_answer(self, answer_id: int) -> dict | None:
        """A kept reply by id, or None."""
        with self.lock:
            rows = list(self.db.query("select * from answers where id = ?", [answer_id]))
        return rows[0] if rows else None

    def remember(self, user: str, question: str, answer_id: int | None, more_id: int | None) -> None:
        """The user's last question (as the answerer read it) and reply, for a follow-up."""
        with self.lock:
            self.db.conn.execute(
                "insert into conversation (\"user\", question, answer_id, more_id, asked_at) values (?, ?, ?, ?, ?) "
                "on conflict(\"user\") do update set question = excluded.question, answer_id = excluded.answer_id, "
                "more_id = excluded.more_id, asked_at = excluded.asked_at",
                [user, question[:1000], answer_id, None if more_id is None else str(more_id), now()])

    def recent(self, user: str, seconds: int = FOLLOW_UP_SECONDS, at: datetime | None = None) -> dict | None:
        """The user's last question and reply if asked less than `seconds` ago, else None."""
        with self.lock:
            rows = list(self.db.query("select * from conversation where \"user\" = ?", [user]))
        if not rows:
            return None
        row = rows[0]
        asked = datetime.fromisoformat(row["asked_at"])
        if (at or datetime.now(UTC)) - asked > timedelta(seconds=seconds):
            return None
        row["more_id"] = int(row["more_id"]) if row["more_id"] else None
        return row

    def add_feedback(self, answer_id: int, user: str, vote: str) -> int | None:
        """A 👍 (`up`) or 👎 (`down`) on a kept reply, with its question and text; voting again on the
        same reply changes the vote. The feedback id, or None when the reply is unknown."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        shown = self.get_answer(answer_id)
        if shown is None:
            return None
        with self.write() as conn:
            conn.execute(
                "insert into feedback (answer_id, \"user\", vote, question, norm, answer, created) "
                "values (?, ?, ?, ?, ?, ?, ?) on conflict(answer_id, \"user\") do update set vote = excluded.vote, "
                "created = excluded.created",
                [answer_id, user, vote, shown["question"], shown["norm"], shown["answer"], now()])
            return int(conn.execute("select id from feedback where answer_id = ? and \"user\" = ?",
                                    [answer_id, user]).fetchone()[0])

    def set_feedback_reason(self, feedback_id: int, reason: str) -> None:
        """The optional reason of a 👎."""
        with self.lock:
            self.db.conn.execute("update feedback set reason = ? where id = ?", [reason[:500], feedback_id])


def open_state(settings) -> State:
    """The state database of a data directory (`settings`: bot.config.Settings)."""
    return State(settings.state_db, load_salt(settings.data_dir, settings.salt))
