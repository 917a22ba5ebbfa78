"""Web console accounts (issue #13): staff, their roles, log-ins, sessions, lock-out and the audit log.

What: `Staff` (an account: name, role, optional region) and `StaffStore`, the only code that reads or
writes the tables staff, staff_sessions, staff_login_failures and staff_audit (bot/storage/tables.py).
`ohbot users add|list` and the console's routes (bot/web/console.py) are thin layers over it.

Why this way:
- Passwords are hashed with argon2id (argon2-cffi, the Password Hashing Competition's winner, with its
  maintained defaults); a hash made with older parameters is replaced at the next log-in.
- Sessions live in the database, so any `ohbot serve` worker on the same PostgreSQL (or SQLite file)
  accepts a log-in made on another. The browser holds a random 256-bit token; the table holds only its
  sha256, so a copy of the database opens no session. Each session has its own CSRF token.
- Lock-out: LOGIN_MAX_FAILURES failed log-ins of one name within LOGIN_WINDOW_SECONDS lock that name, and
  LOGIN_MAX_FAILURES_PER_IP from one address lock the address, until the window has passed since the
  last failure; a correct password does not open a locked account. Unknown names count like known
  ones (and cost the same hashing time), so the answers do not tell which names exist.
- Every export and import (and account and campaign changes) is written to the audit log: who, what,
  when. Admins read it in the console.
"""
from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from bot.config import (
    LOGIN_MAX_FAILURES,
    LOGIN_MAX_FAILURES_PER_IP,
    LOGIN_WINDOW_SECONDS,
    MIN_PASSWORD_CHARS,
    SESSION_IDLE_SECONDS,
    SESSION_MAX_SECONDS,
)
from bot.errors import InputError, OhbotError
from bot.storage.db import connect, transaction
from bot.storage.tables import staff, staff_audit, staff_login_failures, staff_sessions

ROLES = ("admin", "analyst", "reviewer")
ROLE_LABELS = {"admin": "管理员", "analyst": "统计分析员", "reviewer": "内容审核员"}
#: What each role may do. Everybody logged in sees the overview and the campaign reports (aggregates only).
PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "campaigns": frozenset({"admin", "analyst"}),  # create and close campaigns
    "export": frozenset({"admin", "analyst"}),  # report files and response downloads
    "import": frozenset({"admin", "analyst"}),  # response uploads
    "gaps": frozenset({"admin", "reviewer"}),  # refused questions and 👎 answers
    "faq": frozenset({"admin", "reviewer"}),  # FAQ card drafts
    "users": frozenset({"admin"}),
    "audit": frozenset({"admin"}),
}
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
SEEN_EVERY = 60  # seconds: a session's last-seen time is written at most this often
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))  # verified against for unknown names (same time)


class LoginFailed(OhbotError):
    """Wrong name or password, or a disabled account (one message for all: nothing to learn from it)."""


class LoginLocked(OhbotError):
    """Too many failed log-ins for this name or from this address: wait."""


@dataclass(frozen=True)
class Staff:
    id: int
    name: str
    role: str
    region: str | None = None
    disabled: bool = False
    must_change: bool = False  # logged in with a one-time password: choose a new one first

    def can(self, permission: str) -> bool:
        """Whether this account's role grants `permission` (a key of PERMISSIONS)."""
        return self.role in PERMISSIONS[permission]

    @property
    def role_label(self) -> str:
        """The role in Chinese, for pages."""
        return ROLE_LABELS.get(self.role, self.role)


@dataclass(frozen=True)
class Session:
    token: str  # the cookie's value (only in memory and in the browser)
    csrf: str
    staff: Staff


def _now() -> str:
    """UTC ISO 8601 to the second (as every stored time)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def token_hash(token: str) -> str:
    """What the sessions table stores for a cookie token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """A login name: 2–40 of a–z, 0–9, '.', '_', '-' (lower-cased); InputError otherwise."""
    name = name.strip().lower()
    if not 2 <= len(name) <= 40 or not set(name) <= NAME_CHARS:
        raise InputError(f"account name {name!r}: use 2–40 letters a–z, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    """A new password: at least MIN_PASSWORD_CHARS characters, not only spaces; InputError otherwise."""
    if len(password) < MIN_PASSWORD_CHARS or not password.strip():
        raise InputError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


def new_password() -> str:
    """A random one-time password (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def _staff(row: Any) -> Staff:
    return Staff(int(row.id), row.name, row.role, row.region or None, bool(row.disabled), bool(row.must_change))


class StaffStore:
    """Accounts, sessions, failed log-ins and the audit log on the state database's engine."""

    def __init__(self, engine: Engine, clock: Any = time.time) -> None:
        """Over `engine` (bot.storage.db.make_engine; the schema must be current); `clock` gives epoch
        seconds (tests move it)."""
        self.engine = engine
        self.clock = clock

    # ---- accounts -----------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str, region: str | None = None, one_time: bool = False) -> Staff:
        """A new account; InputError for a taken name, an unknown role or a short password. `one_time`:
        the password was generated and shown to someone else; the console asks for a new one first."""
        name = check_name(name)
        if role not in ROLES:
            raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}")
        check_password(password)
        region = (region or "").strip() or None
        if region and role != "analyst":
            raise InputError("--region limits an analyst; admins and reviewers see every region")
        digest = _hasher.hash(password)
        stamp = _now()
        with transaction(self.engine) as conn:
            if conn.execute(select(staff.c.id).where(staff.c.name == name)).first():
                raise InputError(f"an account named {name!r} exists already")
            new_id = conn.execute(insert(staff).values(name=name, role=role, region=region, password=digest,
                                                       disabled=0, must_change=int(one_time), created=stamp,
                                                       updated=stamp)
                                  .returning(staff.c.id)).scalar_one()
        return Staff(int(new_id), name, role, region, must_change=one_time)

    def get(self, name: str) -> Staff | None:
        """The account of that name, or None."""
        with connect(self.engine) as conn:
            row = conn.execute(select(staff).where(staff.c.name == name.strip().lower())).first()
        return _staff(row) if row else None

    def accounts(self) -> list[Staff]:
        """Every account, by name."""
        with connect(self.engine) as conn:
            return [_staff(r) for r in conn.execute(select(staff).order_by(staff.c.name))]

    def count(self) -> int:
        """How many accounts exist (0: the first run)."""
        with connect(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(staff)).scalar_one())

    def set_password(self, name: str, password: str, one_time: bool = False, keep_session: str | None = None) -> None:
        """A new password for an account; its sessions end (but `keep_session`, the token of the session
        that changed it). `one_time`: a generated password, to be replaced at the next log-in."""
        check_password(password)
        with transaction(self.engine) as conn:
            row = conn.execute(select(staff.c.id).where(staff.c.name == name)).first()
            if row is None:
                raise InputError(f"no account named {name!r}")
            conn.execute(update(staff).where(staff.c.id == row.id)
                         .values(password=_hasher.hash(password), must_change=int(one_time), updated=_now()))
            keep = token_hash(keep_session) if keep_session else ""
            conn.execute(delete(staff_sessions).where(staff_sessions.c.staff == row.id, staff_sessions.c.id != keep))

    def verify(self, account: Staff, password: str) -> bool:
        """Whether `password` is the account's current one (re-asked before a password change)."""
        with connect(self.engine) as conn:
            digest = conn.execute(select(staff.c.password).where(staff.c.id == account.id)).scalar()
        if not digest:
            return False
        try:
            return _hasher.verify(str(digest), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def first_admin(self) -> str | None:
        """On the first run (no account at all): an `admin` account with a one-time password, which is
        returned to be shown once; None when accounts exist (also when another process made it first)."""
        if self.count():
            return None
        password = new_password()
        try:
            self.add("admin", "admin", password, one_time=True)
        except (InputError, sa_exc.IntegrityError):  # made by a concurrent first run
            return None
        return password

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (its sessions end at once) or enable an account."""
        with transaction(self.engine) as conn:
            row = conn.execute(select(staff.c.id).where(staff.c.name == name)).first()
            if row is None:
                raise InputError(f"no account named {name!r}")
            conn.execute(update(staff).where(staff.c.id == row.id).values(disabled=int(disabled), updated=_now()))
            if disabled:
                conn.execute(delete(staff_sessions).where(staff_sessions.c.staff == row.id))

    # ---- log-in and lock-out ---------------------------------------------------------------------------
    def locked(self, name: str, ip: str) -> bool:
        """Whether log-ins of `name` or from `ip` are locked now."""
        since = int(self.clock()) - LOGIN_WINDOW_SECONDS
        f = staff_login_failures
        with connect(self.engine) as conn:
            by_name = conn.execute(select(func.count()).where(f.c.name == name, f.c.at > since)).scalar_one()
            by_ip = conn.execute(select(func.count()).where(f.c.ip == ip, f.c.at > since)).scalar_one()
        return by_name >= LOGIN_MAX_FAILURES or by_ip >= LOGIN_MAX_FAILURES_PER_IP

    def login(self, name: str, password: str, ip: str) -> Session:
        """A new session for a correct name and password; LoginLocked while locked out, LoginFailed
        otherwise (each failure is recorded). A successful log-in clears the name's failures."""
        name = name.strip().lower()[:100]
        ip = ip[:100]
        if self.locked(name, ip):
            raise LoginLocked(f"too many failed log-ins: try again in {LOGIN_WINDOW_SECONDS // 60} minutes")
        with connect(self.engine) as conn:
            row = conn.execute(select(staff).where(staff.c.name == name)).first()
        ok = False
        try:
            ok = _hasher.verify(row.password if row is not None else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row.disabled:
            with transaction(self.engine) as conn:
                conn.execute(insert(staff_login_failures).values(name=name, ip=ip, at=int(self.clock())))
            raise LoginFailed("wrong account name or password")
        account = _staff(row)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        stamp = int(self.clock())
        with transaction(self.engine) as conn:
            conn.execute(delete(staff_login_failures).where(staff_login_failures.c.name == name))
            conn.execute(delete(staff_sessions).where(staff_sessions.c.expires < stamp))  # housekeeping
            conn.execute(insert(staff_sessions).values(id=token_hash(token), staff=account.id, csrf=csrf,
                                                       created=stamp, seen=stamp,
                                                       expires=stamp + SESSION_MAX_SECONDS))
            if _hasher.check_needs_rehash(row.password):
                conn.execute(update(staff).where(staff.c.id == account.id).values(password=_hasher.hash(password)))
        return Session(token, csrf, account)

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie token (its account enabled), or None: unknown, expired, idle
        longer than SESSION_IDLE_SECONDS. Refreshes the last-seen time at most once a minute."""
        if not token or len(token) > 200:
            return None
        key = token_hash(token)
        stamp = int(self.clock())
        s = staff_sessions
        with connect(self.engine) as conn:
            row = conn.execute(select(s.c.csrf, s.c.seen, s.c.expires, staff).join(staff, staff.c.id == s.c.staff)
                               .where(s.c.id == key)).first()
        if row is None or row.disabled or row.expires <= stamp or row.seen + SESSION_IDLE_SECONDS <= stamp:
            return None
        if stamp - row.seen >= SEEN_EVERY:
            with transaction(self.engine) as conn:
                conn.execute(update(s).where(s.c.id == key).values(seen=stamp))
        return Session(token, row.csrf, _staff(row))

    def logout(self, token: str | None) -> None:
        """End the session of a cookie token (nothing when unknown)."""
        if token:
            with transaction(self.engine) as conn:
                conn.execute(delete(staff_sessions).where(staff_sessions.c.id == token_hash(token)))

    # ---- audit log ---------------------------------------------------------------------------------
    def audit(self, who: Staff | str, action: str, target: str = "", detail: str = "") -> None:
        """Write one line of the audit log: who did `action` on `target`, with `detail`, now."""
        name = who.name if isinstance(who, Staff) else who
        with transaction(self.engine) as conn:
            conn.execute(insert(staff_audit).values(at=_now(), staff=name, action=action, target=target[:500],
                                                    detail=detail[:2000]))

    def audit_log(self, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        """The newest lines of the audit log first (optionally of one action)."""
        query = select(staff_audit).order_by(staff_audit.c.id.desc()).limit(limit)
        if action:
            query = query.where(staff_audit.c.action == action)
        with connect(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def open_staff(settings: Any) -> StaffStore:
    """The accounts of the configured state database, its schema made current first (the embedded
    SQLite upgrades itself; PostgreSQL must have been upgraded with `ohbot db upgrade`)."""
    from bot.storage.db import open_engine
    from bot.storage.migrate import ensure_schema

    engine = open_engine(settings)
    ensure_schema(engine)
    return StaffStore(engine)
