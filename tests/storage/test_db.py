"""bot/storage/db.py on both backends: the URL setting, transactions, INSERT … ON CONFLICT under
concurrency (threads and processes), advisory locks, and faults (unreachable server, dead connections)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError, DatabaseUnavailable
from bot.storage import migrate
from bot.storage.db import (
    advisory_lock,
    autocommit,
    connect,
    database_url,
    insert_ignore,
    insert_tuples,
    lock_key,
    make_engine,
    redact,
    transaction,
    try_advisory_lock,
    upsert,
)
from bot.storage.tables import campaigns, responses, users
from tests.helpers import REPO_ROOT

CLOSED_PORT_URL = "postgresql://postgres:secret@127.0.0.1:1/test"  # nothing listens on port 1


# ---- the setting -------------------------------------------------------------------------------
def test_default_url_is_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path), env={})
    assert settings.state_url == f"sqlite:///{tmp_path}/ohbot.db"


def test_flag_beats_environment(tmp_path: Path) -> None:
    env = {"OHBOT_DATABASE_URL": "postgresql://db.internal/ohbot"}
    assert load_settings(env=env).state_url == "postgresql://db.internal/ohbot"
    flagged = load_settings(env=env, database_url=f"sqlite:///{tmp_path}/pilot.db")
    assert flagged.state_url == f"sqlite:///{tmp_path}/pilot.db"


def test_bad_urls_are_config_errors_without_the_password() -> None:
    with pytest.raises(ConfigError, match="sqlite:/// or postgresql://") as caught:
        load_settings(env={"OHBOT_DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError, match="psycopg 3"):
        database_url("postgresql+asyncpg://h/db")


def test_urls_get_psycopg_and_lose_their_password_in_messages() -> None:
    assert database_url("postgres://u@h:5433/db").drivername == "postgresql+psycopg"
    assert database_url("sqlite:///x.db").drivername == "sqlite"
    assert redact("postgresql://u:hunter2@h/db") == "postgresql://u:***@h/db"


# ---- faults ------------------------------------------------------------------------------------
def test_an_unreachable_database_is_one_clear_line(engine_for, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"cannot reach the database postgresql://postgres:\*\*\*@127.0.0.1:1/test"):
        with connect(engine_for(CLOSED_PORT_URL)):
            pass
    assert main(["--database-url", CLOSED_PORT_URL, "db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ohbot: cannot reach the database") and err.count("\n") == 1
    assert "secret" not in err


@pytest.mark.postgres
def test_pre_ping_replaces_a_connection_killed_while_idle(pg_url: str, pg_admin, engine_for) -> None:
    """pg_terminate_backend on the pooled connection (as a server restart does): the next request gets
    a fresh connection instead of an error. Without pre-ping the same request fails, as one line."""

    def pooled_pid(engine) -> int:
        with connect(engine) as conn:
            return conn.execute(text("select pg_backend_pid()")).scalar_one()

    for pre_ping in (True, False):
        engine = engine_for(pg_url, pool_size=1, max_overflow=0, pre_ping=pre_ping)
        pid = pooled_pid(engine)
        assert pooled_pid(engine) == pid  # the pool reuses its one connection
        with pg_admin.begin() as conn:
            assert conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        time.sleep(0.2)  # the server closes the socket
        if pre_ping:
            new = pooled_pid(engine)
            assert new != pid
        else:
            with pytest.raises(DatabaseUnavailable, match="lost the connection to the database"):
                pooled_pid(engine)
            assert pooled_pid(engine) != pid  # the broken connection was discarded, the next one works


@pytest.mark.postgres
def test_an_error_by_which_the_server_ends_the_session_is_a_lost_connection(pg_url: str, engine_for) -> None:
    """The server's FATAL "terminating connection" (57P01) can arrive as a statement's result before
    psycopg sees the socket close (pg_terminate_backend landing between a pipeline's statements and its
    commit): it is DatabaseUnavailable all the same, and the connection is not handed out again. The
    error is raised here by a live session (RAISE ... USING ERRCODE), so the socket stays open: only the
    SQLSTATE tells. Any other error stays what it is."""
    from sqlalchemy.exc import IntegrityError

    from bot.storage.db import pipelined

    raise_as = "do $$ begin raise exception 'ending' using errcode = '{}'; end $$"
    engine = engine_for(pg_url, pool_size=1, max_overflow=0)
    with connect(engine) as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar_one()
    with pytest.raises(DatabaseUnavailable, match="lost the connection to the database.*ending"):
        with connect(engine) as conn:
            conn.execute(text(raise_as.format("admin_shutdown")))
    with connect(engine) as conn:  # the pool's one connection was replaced
        pid, old = conn.execute(text("select pg_backend_pid()")).scalar_one(), pid
    assert pid != old
    held = engine.connect()
    with pytest.raises(DatabaseUnavailable, match="lost the connection"):
        pipelined(held, [(text(raise_as.format("crash_shutdown")), {})], commit=True)
    assert held.invalidated
    held.close()
    with pytest.raises(IntegrityError):
        with connect(engine) as conn:
            conn.execute(text(raise_as.format("unique_violation")))


class SentStatements:
    """What a PostgreSQL engine's connections send, from libpq's protocol trace: the simple queries
    (BEGIN, COMMIT, ROLLBACK, a ping's ";") and the statements parsed, one line each."""

    def __init__(self, engine, tmp_path: Path) -> None:
        self.path = tmp_path / "libpq.trace"
        self.file = self.path.open("w")
        engine.dispose()  # connections made from now on are traced
        sqlalchemy_event.listen(engine, "connect", lambda dbapi, _record: dbapi.pgconn.trace(self.file.fileno()))
        self.seen = 0

    def since_last(self) -> list[str]:
        """The messages sent since the previous call (Query and Parse only, their text shortened)."""
        self.file.flush()
        lines = self.path.read_text().splitlines()
        new, self.seen = lines[self.seen:], len(lines)
        return [line.split("\t", 3)[3][:30] for line in new
                if "\tF\t" in line and line.split("\t")[3].startswith(("Query", "Parse"))]


@pytest.mark.postgres
def test_a_pooled_connection_is_checked_without_a_query(pg_url: str, engine_for, tmp_path: Path) -> None:
    """The checkout check reads the socket (the previous test shows it still catches a dead
    connection): a healthy pooled connection costs no round trip before the request's own."""
    engine = engine_for(pg_url, pool_size=1, max_overflow=0)
    sent = SentStatements(engine, tmp_path)
    for _ in range(3):
        with connect(engine) as conn:
            conn.execute(text("select 41 + 1")).scalar_one()
    sent.since_last()
    with connect(engine) as conn:
        assert conn.execute(text("select 41 + 1")).scalar_one() == 42
    queries = sent.since_last()
    assert len(queries) == 3 and "41 + 1" in queries[1], queries  # BEGIN, the statement, ROLLBACK: no ping


@pytest.mark.postgres
def test_autocommit_sends_each_statement_alone(pg_url: str, engine_for, tmp_path: Path) -> None:
    """One statement, one round trip: no BEGIN before it, no COMMIT or ROLLBACK after it; each
    statement commits by itself (another connection sees the row before the block ends)."""
    engine, observer = engine_for(pg_url, pool_size=1), engine_for(pg_url, pool_size=1)
    migrate.upgrade(engine)
    sent = SentStatements(engine, tmp_path)
    with autocommit(engine, write=True) as conn:
        conn.execute(users.insert(), {"key": "u1"})
        with connect(observer) as other:
            assert other.execute(select(users.c.key)).scalars().all() == ["u1"]
    with autocommit(engine, write=False) as conn:
        assert conn.execute(select(users.c.key)).scalars().all() == ["u1"]
    queries = sent.since_last()
    assert len(queries) == 2 and "INSERT INTO users" in queries[0] and "SELECT users.key" in queries[1], queries


def test_autocommit_write_keeps_what_it_wrote_on_both_backends(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with autocommit(engine, write=True) as conn:
        conn.execute(users.insert(), {"key": "kept"})
    with autocommit(engine, write=False) as conn:
        assert conn.execute(select(users.c.key)).scalars().all() == ["kept"]


# ---- transactions ------------------------------------------------------------------------------
def test_transaction_commits_or_rolls_back_as_a_whole(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        conn.execute(users.insert(), {"key": "kept"})
    with pytest.raises(ZeroDivisionError):
        with transaction(engine) as conn:
            conn.execute(users.insert(), {"key": "gone"})
            conn.execute(users.insert(), {"key": "gone too"})
            _ = 1 / 0
    with connect(engine) as conn:
        assert conn.execute(select(users.c.key)).scalars().all() == ["kept"]


def test_upsert_updates_and_keeps_values_the_new_row_leaves_empty(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        upsert(conn, users, {"key": "u", "role": "worker", "region": "广东省", "updated": "1"}, on=["key"])
        upsert(conn, users, [{"key": "u", "role": None, "region": "湖南省", "updated": "2"},
                             {"key": "v", "role": "employer", "region": None, "updated": "2"}],
               on=["key"], keep_when_null=["role", "region"])
        upsert(conn, users, {"key": "v", "role": None, "region": None, "updated": "3"}, on=["key"])
    with connect(engine) as conn:
        rows = conn.execute(select(users.c.key, users.c.role, users.c.region, users.c.updated).order_by(users.c.key)).all()
    assert rows == [("u", "worker", "湖南省", "2"), ("v", None, None, "3")]


def test_insert_tuples_writes_rows_as_given_on_both_backends(db_url: str, engine_for) -> None:
    """The driver-level bulk insert of the CSV import: placeholders of each driver, the quoted "user"
    column (a reserved word on PostgreSQL), NULLs and non-ASCII text, in one transaction."""
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    columns = ("form", "campaign", "user", "item_id", "answer", "correct", "answered_at")
    rows = [("f1", "c", "u1", "q1", "A", 1, "2024-03-05T02:00:00+00:00"),
            ("f1", "c", "u1", "q2", "对", 0, None)]
    with transaction(engine) as conn:
        insert_tuples(conn, responses, columns, rows)
        insert_tuples(conn, responses, columns, [])  # nothing to write: no statement
    with connect(engine) as conn:
        stored = conn.execute(select(*(responses.c[c] for c in columns)).order_by(responses.c.item_id)).all()
    assert [tuple(r) for r in stored] == rows
    with pytest.raises(IntegrityError), transaction(engine) as conn:  # the unique (form, item) index holds
        insert_tuples(conn, responses, columns, rows[:1])


def test_insert_ignore_counts_only_new_rows(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    answer = {"form": "f1", "campaign": "c", "user": "u", "item_id": "q1", "answer": "A", "correct": 1}
    with transaction(engine) as conn:
        assert insert_ignore(conn, responses, answer, on=["form", "item_id"]) == 1
        assert insert_ignore(conn, responses, {**answer, "answer": "B"}, on=["form", "item_id"]) == 0
        assert insert_ignore(conn, responses, [answer, {**answer, "item_id": "q2"}, {**answer, "item_id": "q3"}],
                             on=["form", "item_id"]) == 2
        assert insert_ignore(conn, responses, [], on=["form", "item_id"]) == 0
    with connect(engine) as conn:
        assert conn.execute(select(responses.c.item_id, responses.c.answer).order_by(responses.c.id)).all() == [
            ("q1", "A"), ("q2", "A"), ("q3", "A")]


def test_same_answer_from_eight_threads_at_once_is_stored_once(db_url: str, engine_for) -> None:
    """Eight workers record the same (form, item) in the same instant: the unique index lets one in."""
    engine = engine_for(db_url, pool_size=8)
    migrate.upgrade(engine)
    start = threading.Barrier(8)
    inserted: list[int] = []

    def record(n: int) -> None:
        """One worker's attempt, in its own transaction on its own connection."""
        start.wait()
        with transaction(engine) as conn:
            row = {"form": "f", "item_id": "q1", "answer": "ABCDEFGH"[n], "correct": 0}
            inserted.append(insert_ignore(conn, responses, row, on=["form", "item_id"]))

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(inserted) == [0] * 7 + [1]
    with connect(engine) as conn:
        assert conn.execute(select(responses.c.id)).all() == [(1,)]


RECORD_IN_A_PROCESS = """
import sys, time
from pathlib import Path
from bot.storage.db import insert_ignore, make_engine, transaction
from bot.storage.tables import responses
url, go = sys.argv[1], Path(sys.argv[2])
engine = make_engine(url)
with engine.connect():  # connect before the start signal, so both processes race only the insert
    pass
while not go.exists():
    time.sleep(0.005)
with transaction(engine) as conn:
    print(insert_ignore(conn, responses, {"form": "f", "item_id": "q1", "answer": "A"}, on=["form", "item_id"]))
"""


def test_same_answer_from_two_processes_is_stored_once(db_url: str, engine_for, tmp_path: Path) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    go = tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", RECORD_IN_A_PROCESS, db_url, str(go)], cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.0)
    go.touch()
    outputs = [w.communicate(timeout=60) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == ["0", "1"]
    with connect(engine) as conn:
        assert conn.execute(select(responses.c.form, responses.c.item_id)).all() == [("f", "q1")]


# ---- locks -------------------------------------------------------------------------------------
def _read_modify_write(engine, name: str, lock: bool, hold: float, spans: list[tuple[float, float]],
                       between: threading.Barrier | None = None) -> None:
    """Read a counter (campaign `name`'s form_size), wait, write it + 1: a lost update unless serialised."""
    with transaction(engine) as conn:
        if lock:
            advisory_lock(conn, f"test:{name}")
        began = time.monotonic()
        value = conn.execute(select(campaigns.c.form_size).where(campaigns.c.name == name)).scalar_one()
        if between is not None:
            between.wait()  # both have read before either writes
        time.sleep(hold)
        conn.execute(update(campaigns).where(campaigns.c.name == name).values(form_size=value + 1))
        spans.append((began, time.monotonic()))


def _two_writers(engine, name: str, lock: bool, between: threading.Barrier | None = None) -> list[tuple[float, float]]:
    """Run two read-modify-write transactions at once; their (start, end) after the lock."""
    spans: list[tuple[float, float]] = []
    threads = [threading.Thread(target=_read_modify_write, args=(engine, name, lock, 0.3, spans, between))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return spans


def test_advisory_lock_serialises_two_writers(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        conn.execute(campaigns.insert(), {"name": "counter", "form_size": 0})
    spans = sorted(_two_writers(engine, "counter", lock=True))
    with connect(engine) as conn:
        assert conn.execute(select(campaigns.c.form_size)).scalar_one() == 2  # no update lost
    assert spans[0][1] <= spans[1][0]  # the second began reading after the first committed


@pytest.mark.postgres
def test_without_the_lock_postgresql_loses_an_update(pg_url: str, engine_for) -> None:
    """The control for the test above: READ COMMITTED lets both read 0, so one increment is lost."""
    engine = engine_for(pg_url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        conn.execute(campaigns.insert(), {"name": "counter", "form_size": 0})
    _two_writers(engine, "counter", lock=False, between=threading.Barrier(2))
    with connect(engine) as conn:
        assert conn.execute(select(campaigns.c.form_size)).scalar_one() == 1


@pytest.mark.postgres
def test_try_advisory_lock_says_when_another_worker_holds_it(pg_url: str, engine_for) -> None:
    engine = engine_for(pg_url)
    taken, release = threading.Event(), threading.Event()

    def holder() -> None:
        """A worker refreshing the access token: holds the lock until told to commit."""
        with transaction(engine) as conn:
            advisory_lock(conn, "token-refresh")
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert taken.wait(10)
    with transaction(engine) as conn:
        assert try_advisory_lock(conn, "token-refresh") is False
        assert try_advisory_lock(conn, "another-lock") is True
    release.set()
    thread.join()
    with transaction(engine) as conn:
        assert try_advisory_lock(conn, "token-refresh") is True


def test_locks_need_a_write_transaction(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    with connect(engine) as conn, pytest.raises(RuntimeError, match="needs a transaction"):
        advisory_lock(conn, "x")
    assert lock_key("token-refresh") == lock_key("token-refresh") != lock_key("token-refresh2")
    assert -(2**63) <= lock_key("token-refresh") < 2**63


def test_a_new_sqlite_database_opened_while_another_connection_writes_waits_for_it(tmp_path: Path) -> None:
    """Turning a new database to WAL needs its exclusive lock and SQLite does not call the busy handler
    for it: a second process opening a new database during another's first write (a deploy's
    `db upgrade` beside a starting worker) must wait for the writer, not fail with "database is locked"."""
    import sqlite3

    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("create table t (x)")  # the file is still in rollback-journal mode, write-locked
    commit = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    commit.start()
    started = time.monotonic()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with connect(engine) as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("select count(*) from t")).scalar() == 0
    finally:
        commit.join()
        writer.close()
        engine.dispose()
    assert time.monotonic() - started >= 0.4  # it waited for the writer's commit
