"""Console accounts on both backends (bot/storage/staff.py): passwords hashed, log-in and lock-out,
sessions that any worker accepts, the audit log, and the `ohbot users` commands."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bot.config import LOGIN_MAX_FAILURES, LOGIN_WINDOW_SECONDS, SESSION_IDLE_SECONDS
from bot.errors import InputError
from bot.storage import migrate
from bot.storage.db import connect, make_engine
from bot.storage.staff import LoginFailed, LoginLocked, StaffStore
from bot.storage.tables import staff, staff_sessions
from tests.helpers import REPO_ROOT

PASSWORD = "correct horse battery"


class Clock:
    """Epoch seconds that a test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(db_url, engine_for):
    """Two stores on one database: two `ohbot serve` workers (separate engines, one clock)."""
    clock = Clock()
    first = engine_for(db_url)
    migrate.upgrade(first)
    return StaffStore(first, clock), StaffStore(engine_for(db_url), clock), clock


def test_passwords_are_stored_as_argon2_hashes_only(stores) -> None:
    store, _, _ = stores
    account = store.add("Wang.Li", "analyst", PASSWORD, region="城中区")
    assert (account.name, account.role, account.region) == ("wang.li", "analyst", "城中区")
    with connect(store.engine) as conn:
        stored = conn.execute(staff.select()).one()
    assert stored.password.startswith("$argon2id$") and PASSWORD not in stored.password
    with pytest.raises(InputError, match="exists already"):
        store.add("wang.li", "admin", PASSWORD)
    with pytest.raises(InputError, match="at least 10"):
        store.add("short", "admin", "123")
    with pytest.raises(InputError, match="role"):
        store.add("someone", "root", PASSWORD)
    with pytest.raises(InputError, match="limits an analyst"):
        store.add("rev", "reviewer", PASSWORD, region="城中区")
    with pytest.raises(InputError, match="account name"):
        store.add("<b>x</b>", "admin", PASSWORD)


def test_a_session_made_by_one_worker_is_accepted_by_another_and_ends_everywhere(stores) -> None:
    worker_a, worker_b, clock = stores
    worker_a.add("boss", "admin", PASSWORD)
    session = worker_a.login("boss", PASSWORD, "10.0.0.1")
    seen = worker_b.session(session.token)
    assert seen is not None and seen.staff.name == "boss" and seen.csrf == session.csrf
    with connect(worker_a.engine) as conn:  # only the token's hash is stored
        assert conn.execute(staff_sessions.select()).one().id != session.token
    assert worker_b.session("forged-token") is None
    worker_b.logout(session.token)
    assert worker_a.session(session.token) is None
    again = worker_a.login("boss", PASSWORD, "10.0.0.1")
    clock.now += SESSION_IDLE_SECONDS + 1  # idle too long
    assert worker_b.session(again.token) is None


def test_lock_out_after_repeated_failures_even_with_the_right_password(stores) -> None:
    store, other, clock = stores
    store.add("boss", "admin", PASSWORD)
    for _ in range(LOGIN_MAX_FAILURES):
        with pytest.raises(LoginFailed):
            store.login("boss", "wrong password!", "10.0.0.9")
    with pytest.raises(LoginLocked):  # also on another worker, and with the right password
        other.login("boss", PASSWORD, "10.0.0.10")
    with pytest.raises(LoginFailed):  # an unknown name fails like a wrong password
        store.login("nobody", PASSWORD, "10.0.0.11")
    clock.now += LOGIN_WINDOW_SECONDS + 1
    assert store.login("boss", PASSWORD, "10.0.0.9").staff.name == "boss"


def test_a_disabled_account_cannot_log_in_and_loses_its_sessions(stores) -> None:
    store, _, _ = stores
    store.add("temp", "reviewer", PASSWORD)
    session = store.login("temp", PASSWORD, "10.0.0.1")
    store.set_disabled("temp", True)
    assert store.session(session.token) is None
    with pytest.raises(LoginFailed):
        store.login("temp", PASSWORD, "10.0.0.1")


def test_first_admin_once_with_a_one_time_password(stores) -> None:
    store, other, _ = stores
    password = store.first_admin()
    assert password and len(password) >= 16
    assert other.first_admin() is None
    session = store.login("admin", password, "127.0.0.1")
    assert session.staff.role == "admin" and session.staff.must_change
    store.set_password("admin", "a new password 1", keep_session=session.token)
    kept = store.session(session.token)
    assert kept is not None and not kept.staff.must_change


def test_audit_log_newest_first(stores) -> None:
    store, other, _ = stores
    account = store.add("ana", "analyst", PASSWORD)
    store.audit(account, "export", "活动A", "report xlsx")
    other.audit(account, "import", "活动A", "responses.csv: 600 answers")
    rows = store.audit_log()
    assert [(r["staff"], r["action"], r["target"]) for r in rows] == [("ana", "import", "活动A"),
                                                                       ("ana", "export", "活动A")]
    assert rows[0]["at"] >= rows[1]["at"]


def _ohbot(tmp_path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "--data-dir", str(tmp_path), *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def test_users_add_and_list_commands(tmp_path) -> None:
    added = _ohbot(tmp_path, "users", "add", "li", "--role", "analyst", "--region", "城中区", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    listed = _ohbot(tmp_path, "users", "list", "--json")
    assert json.loads(listed.stdout) == [{"name": "li", "role": "analyst", "region": "城中区", "disabled": False}]
    assert PASSWORD not in listed.stdout + added.stdout + added.stderr
    short = _ohbot(tmp_path, "users", "add", "x2", "--role", "admin", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and short.stderr.strip() == "ohbot: the password needs at least 10 characters"
    changed = _ohbot(tmp_path, "users", "password", "li", "--password-stdin", stdin="another password\n")
    assert changed.returncode == 0, changed.stderr
    store = StaffStore(make_engine(f"sqlite:///{tmp_path / 'ohbot.db'}"))
    assert store.login("li", "another password", "127.0.0.1").staff.region == "城中区"
