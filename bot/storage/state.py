"""The bot's own database (DATA_DIR/ohbot.db, or PostgreSQL: `OHBOT_DATABASE_URL`): user profiles and
pending dialogue steps, the questions it could not answer, the replies and their feedback. Never
rebuilt, never holds a raw chat id: users are stored under a salted hash, so a restart or another
worker process loses nothing and reports identify no one.

Queries are SQLAlchemy Core on the engine of bot/storage/db.py (tables of bot/storage/tables.py), so
the same code runs on SQLite and PostgreSQL; `PROFILE_FIELDS` is re-exported from tables.py.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, distinct, func, insert, select, text, update

from bot.errors import ConfigError
from bot.storage import migrate
from bot.storage.db import autocommit, backend, connect, make_engine, transaction, upsert
from bot.storage.secretfile import create_secret, read_secret
from bot.storage.tables import PROFILE_FIELDS, TABLES, answers, conversation, feedback, unanswered, users
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


LEGACY = "sha256-salt:"  # a key that is an installation's old salt: its users keep their pseudonyms


def load_pseudonym_key(settings: Any) -> str:
    """The pseudonym key (`settings`: bot.config.Settings), which never lives in the data directory:
    OHBOT_PSEUDONYM_KEY; else OHBOT_SALT, an old installation's salt (LEGACY); else the key file
    (OHBOT_PSEUDONYM_KEY_FILE, default ~/.config/ohbot/pseudonym.key), created 0600 and atomically
    with 32 random bytes on first use. A data directory of an older version still holding its `salt`
    file has it moved into the key file (as LEGACY: every user keeps their pseudonym), then deleted.
    An empty key or file is refused (ConfigError), as is a key other than the one the data directory
    was first used with (DATA_DIR/pseudonym.check holds an HMAC of a fixed text, not the key)."""
    if settings.pseudonym_key is not None:
        key = settings.pseudonym_key.strip()
        if len(key) < 16:
            raise ConfigError("OHBOT_PSEUDONYM_KEY must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return _checked(settings.data_dir, key, "OHBOT_PSEUDONYM_KEY")
    if settings.salt is not None:
        if not settings.salt.strip():
            raise ConfigError("OHBOT_SALT is empty: set the salt this installation was started with")
        return _checked(settings.data_dir, LEGACY + settings.salt.strip(), "OHBOT_SALT")
    path = Path(settings.pseudonym_key_file)
    old = settings.data_dir / "salt"
    salt = read_secret(old)
    if salt is not None:  # an installation from before issue #11: move its salt out of the data directory
        key = read_secret(path) or create_secret(path, LEGACY + salt)
        if key != LEGACY + salt:
            raise ConfigError(f"{old} holds this data directory's salt, but {path} holds another key: set "
                              "OHBOT_PSEUDONYM_KEY_FILE to a file of this data directory's own (the salt moves there)")
        key = _checked(settings.data_dir, key, str(path))
        old.unlink()
        return key
    return _checked(settings.data_dir, read_secret(path) or create_secret(path), str(path))


def _checked(data_dir: Path, key: str, source: str) -> str:
    """`key`, after checking it against the data directory's pseudonym.check (written on first use):
    another key would silently give every user a new pseudonym (a lost key file, another $HOME)."""
    check = hmac.new(key.encode("utf-8"), b"ohbot pseudonym key check v1", hashlib.sha256).hexdigest()[:32]
    path = Path(data_dir) / "pseudonym.check"
    found = read_secret(path) or create_secret(path, check)
    if found != check:
        raise ConfigError(f"the pseudonym key from {source} is not the one {data_dir} was used with: restore that key "
                          "(or OHBOT_PSEUDONYM_KEY_FILE pointing to it); a new key would orphan every user")
    return key


def gap_key(question: str) -> str:
    """Questions that differ only in script, width, case, spaces or punctuation count as one."""
    return re.sub(r"[\W_]+", "", normalize(question))[:500]


class State:
    """The state database behind one URL (bot/storage/db.py): a SQLite file (the embedded default)
    or PostgreSQL shared by N worker processes. Thread-safe: every method checks a connection out of
    the engine's pool for one statement or one transaction, so nothing is held between calls."""

    def __init__(self, target: Engine | Path | str, salt: str) -> None:
        """`target`: an engine, a database URL, or the path of a SQLite file. The schema comes from the
        migrations only (bot/storage/migrate.py `ensure_schema`): a SQLite file, also one made before
        migrations, upgrades itself; a PostgreSQL database behind them is a SchemaOutdated error."""
        if isinstance(target, Engine):
            self.engine = target
        elif isinstance(target, Path) or "://" not in target:
            self.engine = make_engine(f"sqlite:///{Path(target)}")
        else:
            self.engine = make_engine(target)
        # the pseudonym key (load_pseudonym_key); `salt` is the secret itself, from which the web chat
        # and the Telegram webhook derive their own secrets
        self._legacy = salt.startswith(LEGACY)
        self.salt = salt.removeprefix(LEGACY)
        self._key = self.salt.encode("utf-8")
        migrate.ensure_schema(self.engine)

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (bot.storage.db.connect)."""
        return connect(self.engine)

    def write(self) -> AbstractContextManager[Connection]:
        """One write transaction (bot.storage.db.transaction): committed on leaving the block, rolled
        back on any exception. On SQLite it holds the write lock (BEGIN IMMEDIATE), so reads inside see
        a state no other writer changes before the commit; on PostgreSQL writes that must happen once
        rely on unique indexes or advisory locks."""
        return transaction(self.engine)

    def close(self) -> None:
        """Close the pooled connections (tests, and a process that is done with the database)."""
        self.engine.dispose()

    def user_key(self, channel: str, user_id: int | str) -> str:
        """The pseudonym of a user of `channel` (also of imported respondents and enterprise codes):
        HMAC-SHA256 keyed with the pseudonym key, 128 bits in hex. Without the key, the database gives
        no way back to the id; an installation from before issue #11 keeps its salted SHA-256 (LEGACY)."""
        if self._legacy:
            return hashlib.sha256(f"{self.salt}:{channel}:{user_id}".encode()).hexdigest()[:32]
        return hmac.new(self._key, f"{channel}:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]

    # get_user and save_user are on every message's path: one statement each, built once, and on
    # PostgreSQL one round trip each (no BEGIN/COMMIT around it: `autocommit`)
    def get_user(self, key: str) -> User:
        """The user's stored profile, pending step and consent (a new `User` when there is none)."""
        with autocommit(self.engine, write=False) as conn:
            return user_from_row(key, conn.execute(GET_USER, {"user_key": key}).first())

    def save_user(self, user: User) -> None:
        stamp = now()
        row = {"key": user.key, **{f: user.profile.get(f) for f in PROFILE_FIELDS}, "consent": int(user.consent),
               "pending": json.dumps(user.pending, ensure_ascii=False), "created": stamp, "updated": stamp}
        with autocommit(self.engine, write=True) as conn:
            upsert(conn, users, row, on=["key"], update=[*PROFILE_FIELDS, "consent", "pending", "updated"])

    def forget(self, key: str) -> None:
        """Delete everything stored about one user (profile, logged questions, quiz data): every
        table with a `user` column (tables.TABLES), then the users row, in one transaction."""
        with self.write() as conn:
            for table in TABLES:
                if "user" in table.c:
                    conn.execute(delete(table).where(table.c.user == key))
            conn.execute(delete(users).where(users.c.key == key))
        if backend(self.engine) == "sqlite":  # the deleted rows' old pages stay in ohbot.db-wal until a
            with connect(self.engine) as conn:  # checkpoint: copy them back (zeroed: secure_delete) and empty it
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def log_unanswered(self, question: str, user: str | None) -> None:
        with self.write() as conn:
            conn.execute(insert(unanswered).values(question=question[:500], norm=gap_key(question), user=user,
                                                   asked_at=now()))

    def gaps(self, limit: int = 20) -> list[dict]:
        """What the bot could not answer well, most frequent first: refused questions and questions
        whose answer got a 👎, together under one normalised key (`n` = refusals + 👎; the 👎
        reasons given, newest first)."""
        with self.read() as conn:
            refused = {r["norm"]: r for r in _dicts(conn.execute(text(
                "select norm, count(*) as n, min(question) as example, max(asked_at) as last "
                "from unanswered group by norm")))}
            down = {r["norm"]: r for r in _dicts(conn.execute(text(
                "select norm, count(*) as n, min(question) as example, max(created) as last "
                "from feedback where vote = 'down' group by norm")))}
            reasons: dict[str, list[str]] = {}
            for norm, reason in conn.execute(text(
                    "select norm, reason from feedback where vote = 'down' and reason is not null "
                    "and reason != '' order by created desc, id desc")):
                reasons.setdefault(norm, []).append(reason)
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
        n, users = func.count(), func.count(distinct(unanswered.c.user))
        with self.read() as conn:
            total = conn.execute(select(func.count()).select_from(unanswered)).scalar_one()
            rows = conn.execute(select(unanswered.c.norm, n, users).group_by(unanswered.c.norm)
                                .having(users >= min_users).order_by(n.desc(), unanswered.c.norm).limit(limit)).all()
        return int(total), [{"norm": _DIGITS.sub("＊＊＊＊", norm), "n": int(n), "users": int(users)}
                            for norm, n, users in rows]

    # ---- answers, follow-ups and feedback ----------------------------------------------------------
    def log_answer(self, user: str | None, question: str, text: str, decision: str, door: str | None = None,
                   faq_id: str | None = None, confidence: float = 0.0) -> int:
        """Keep one reply to a question (so that 👍/👎 can name it); its id."""
        with self.write() as conn:
            return int(conn.execute(insert(answers).values(
                user=user, question=question[:500], norm=gap_key(question), answer=text, decision=decision,
                door=door, faq_id=faq_id, confidence=float(confidence), asked_at=now()).returning(answers.c.id))
                .scalar_one())

    def get_answer(self, answer_id: int) -> dict | None:
        """A kept reply by id, or None."""
        with self.read() as conn:
            row = conn.execute(select(answers).where(answers.c.id == answer_id)).mappings().first()
        return dict(row) if row else None

    def remember(self, user: str, question: str, answer_id: int | None, more_id: int | None) -> None:
        """The user's last question (as the answerer read it) and reply, for a follow-up."""
        row = {"user": user, "question": question[:1000], "answer_id": answer_id,
               "more_id": None if more_id is None else str(more_id), "asked_at": now()}
        with self.write() as conn:
            upsert(conn, conversation, row, on=["user"])

    def recent(self, user: str, seconds: int = FOLLOW_UP_SECONDS, at: datetime | None = None) -> dict | None:
        """The user's last question and reply if asked less than `seconds` ago, else None."""
        with self.read() as conn:
            found = conn.execute(select(conversation).where(conversation.c.user == user)).mappings().first()
        if found is None:
            return None
        row = dict(found)
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
        row = {"answer_id": answer_id, "user": user, "vote": vote, "question": shown["question"],
               "norm": shown["norm"], "answer": shown["answer"], "created": now()}
        with self.write() as conn:
            upsert(conn, feedback, row, on=["answer_id", "user"], update=["vote", "created"])
            return int(conn.execute(select(feedback.c.id).where(feedback.c.answer_id == answer_id,
                                                                feedback.c.user == user)).scalar_one())

    def set_feedback_reason(self, feedback_id: int, reason: str) -> None:
        """The optional reason of a 👎."""
        with self.write() as conn:
            conn.execute(update(feedback).where(feedback.c.id == feedback_id).values(reason=reason[:500]))


# one user's stored state, parameter "user_key"; its row read by `user_from_row`
GET_USER = (select(*(users.c[f] for f in PROFILE_FIELDS), users.c.pending, users.c.consent)
            .where(users.c.key == bindparam("user_key")))


def user_from_row(key: str, row: Any) -> User:
    """The `User` of a GET_USER row (a new one for None)."""
    if row is None:
        return User(key=key)
    profile = dict(zip(PROFILE_FIELDS, row[: len(PROFILE_FIELDS)]))
    return User(key=key, profile=profile, pending=json.loads(row[-2] or "{}"), consent=bool(row[-1]))


def _dicts(result: Any) -> list[dict[str, Any]]:
    """The rows of a result as plain dicts."""
    return [dict(r) for r in result.mappings()]


def open_state(settings) -> State:
    """The state database of a data directory (`settings`: bot.config.Settings)."""
    return State(settings.state_url, load_pseudonym_key(settings))
