"""The state database behind one URL: SQLite (the embedded default) or PostgreSQL (province scale).

Design (issue #14)
------------------
- One URL picks the backend: `OHBOT_DATABASE_URL` / `--database-url`, default `sqlite:///DATA_DIR/ohbot.db`
  (bot/config.py `Settings.state_url`). `make_engine` turns it into a SQLAlchemy 2 Core engine:
  psycopg 3 for `postgresql://` (a liveness check at checkout, a small pool per worker, connect timeout), the
  standard sqlite3 module for `sqlite:///` (WAL, busy timeout, BEGIN issued by us, not by sqlite3).
- One schema: `bot/storage/tables.py` (Core `Table` objects, what queries are written with) and the
  Alembic revisions in `bot/storage/migrations/` (what `ohbot db upgrade` applies; see
  bot/storage/migrate.py). `State` calls `migrate.ensure_schema(engine)` when it opens: on
  PostgreSQL a database behind its migrations is an error ("run `ohbot db upgrade`"), so N workers
  never race a migration; the embedded SQLite default upgrades itself, so `make run` needs nothing.
- Writes that must happen once across processes use the database, not in-process locks:
  `transaction(engine)` (BEGIN IMMEDIATE on SQLite, which serialises writers of every process; a
  normal READ COMMITTED transaction on PostgreSQL), `insert_ignore` / `upsert` (INSERT … ON CONFLICT,
  SQLite ≥ 3.24 and PostgreSQL), and `advisory_lock(conn, name)` (pg_advisory_xact_lock; on SQLite the
  write lock the transaction already holds).
- Failures are one line: an unreachable database or a connection lost mid-query raises
  `bot.errors.DatabaseUnavailable` (a web worker answers 503 so the platform retries); the pool's
  checkout check replaces connections that died while idle (a PostgreSQL restart), without an error.
- Round trips are the cost of the write path (issue #14: the server is on another core, or another
  host): on PostgreSQL the checkout check reads the socket instead of sending a query, and
  `autocommit(engine)` runs statements that are each complete by themselves (one read, one
  INSERT … ON CONFLICT, one conditional UPDATE, a data-modifying WITH) without BEGIN and COMMIT:
  one round trip instead of three.

How the queries are written (bot/storage/state.py, channels.py, bot/quiz/forms.py, bot/awareness/):
- Core expressions on tables.py's objects, or `text()` with `:name` parameters; `user` and `end` are
  reserved words on PostgreSQL and must be quoted in hand-written SQL (`"user"`) — Core objects quote
  them already. Beware: an unquoted `select user from forms` is no error there, it returns CURRENT_USER;
- `with state.write() as conn:` is `transaction(engine)` (all or nothing), `state.read()` is `connect`;
- `upsert(...)` for INSERT … ON CONFLICT DO UPDATE; writes that must happen once are `insert_ignore(...)`
  on a unique index (one counted form per campaign and user: migration 0006) or conditional UPDATEs
  whose row count says who won (an answer per form position), or take `advisory_lock` first;
- no SQLite `rowid`: order by real columns; `State.forget` walks tables.TABLES.
"""
from __future__ import annotations

import hashlib
import select
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ClauseElement,
    ColumnElement,
    Connection,
    Engine,
    Table,
    TextClause,
    create_engine,
    event,
    func,
    sql,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url

from bot.errors import ConfigError, DatabaseUnavailable

# A worker (`ohbot serve`) handles a few requests at once; every request holds a connection only
# for its transaction. 5 + 5 per worker keeps 8 workers well under PostgreSQL's default 100.
POOL_SIZE = 5
MAX_OVERFLOW = 5
POOL_TIMEOUT = 10  # seconds to wait for a pooled connection before failing (the worker answers 503)
POOL_RECYCLE = 1800  # seconds: replace connections before firewalls or PgBouncer drop idle ones
CONNECT_TIMEOUT = 5  # seconds for a new PostgreSQL connection
SQLITE_BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for another's write lock (as State does today)

_BEGIN = "ohbot_sqlite_begin"  # connection execution option: the BEGIN statement our hook emits


def database_url(url: str | URL) -> URL:
    """The SQLAlchemy URL of a state database URL: `postgresql://` (or `postgres://`) gets the
    psycopg 3 driver; `sqlite:///` stays on the standard sqlite3 module. ConfigError otherwise."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError:
        raise ConfigError(f"not a database URL: {redact(str(url))!r}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ConfigError(f"PostgreSQL is reached with psycopg 3: use postgresql://, not {parsed.drivername}://")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed
    raise ConfigError(f"database URL must start with sqlite:/// or postgresql://, not {parsed.drivername}://")


def redact(url: str | URL) -> str:
    """The URL without its password, fit for messages and logs (and without the driver we add)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError:
        return "<unparseable URL>"
    if parsed.drivername == "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def backend(bind: Engine | Connection) -> str:
    """'sqlite' or 'postgresql': which SQL dialect an engine or connection speaks."""
    return bind.dialect.name


def make_engine(url: str | URL, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
                pre_ping: bool = True, echo: bool = False) -> Engine:
    """An engine for a state database URL (see `database_url`).

    PostgreSQL: psycopg 3; with `pre_ping`, a connection that died while idle (a server restart,
    `pg_terminate_backend`, a proxy that closed it) is replaced before use instead of failing the
    request — told by its socket (`_idle_connection_alive`), not by a query, so the check costs no
    round trip; a bounded pool, connect timeout and `application_name=ohbot` (pg_stat_activity).
    SQLite: the parent folder is created; WAL and synchronous=NORMAL as today's `State`; sqlite3's
    own transaction handling is switched off and `transaction()` emits BEGIN IMMEDIATE itself.
    No connection is made here: an unreachable server shows at first use (DatabaseUnavailable)."""
    parsed = database_url(url)
    if parsed.drivername.startswith("postgresql"):
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
        if "application_name" not in parsed.query:
            connect_args["application_name"] = "ohbot"
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=POOL_TIMEOUT,
                               pool_recycle=POOL_RECYCLE, connect_args=connect_args, echo=echo)
        _server_ended_is_disconnect(engine)
        if pre_ping:
            _check_on_checkout(engine)
        return engine
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
                           echo=echo)
    _take_over_sqlite_transactions(engine)
    return engine


def _idle_connection_alive(dbapi_connection: Any) -> bool:
    """Whether an idle psycopg connection is still usable, without a round trip: between two
    requests the server sends nothing, so a readable socket means it closed the connection (a
    restart, `pg_terminate_backend` — which sends its FATAL message, then closes) or sent something
    we never asked for; either way the connection is replaced. What this cannot see, a peer gone
    without closing (a cable pulled), a `SELECT 1` would not see either: it would hang as long."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return False
    try:
        fd = dbapi_connection.fileno()
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([fd], [], [], 0)
        return not readable
    except (OSError, ValueError):
        return False


# SQLSTATEs by which the server says it ended this session: class 08 (connection exception) and
# 57P01-57P03 (admin shutdown — pg_terminate_backend —, crash shutdown, cannot connect now).
_SERVER_ENDED = ("08", "57P01", "57P02", "57P03")


def server_ended(error: BaseException) -> bool:
    """Whether a driver error means the server ended the connection (it cannot be used again)."""
    state = getattr(error, "sqlstate", None) or ""
    return any(state.startswith(code) for code in _SERVER_ENDED)


def _server_ended_is_disconnect(engine: Engine) -> None:
    """SQLAlchemy's `handle_error` hook: an error by which the server ended the session counts as a
    disconnect, so the connection is invalidated and `lost_connection` turns it into
    DatabaseUnavailable. psycopg's own test (the connection closed or broken) misses the case where
    the server's FATAL message is read as a statement's result before the socket's end is seen: a
    `pg_terminate_backend` that lands between a pipeline's statements and its commit (seen in CI)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if context.original_exception is not None and server_ended(context.original_exception):
            context.is_disconnect = True


def _check_on_checkout(engine: Engine) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's checkout-event recipe) with `_idle_connection_alive`
    instead of `pool_pre_ping`'s `SELECT 1`: a dead connection invalidates the pool's older
    connections too (as a failed pre-ping does: after a restart they are all dead) and the pool
    connects anew, up to twice, before the request sees an error."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if not _idle_connection_alive(dbapi_connection):
            raise sa_exc.InvalidatePoolError()


def _set_wal(cursor: sqlite3.Cursor, timeout: float = SQLITE_BUSY_TIMEOUT) -> None:
    """PRAGMA journal_mode=WAL, waiting (up to the busy timeout) while another connection writes.
    Turning a new database file to WAL needs its exclusive lock, and SQLite answers "database is
    locked" at once instead of calling the busy handler, so two processes opening one new database
    (a deploy's `ohbot db upgrade` beside a starting worker) would fail without this wait."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _take_over_sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy's documented recipe: sqlite3 issues no BEGIN of its own (isolation_level None), we
    emit BEGIN (reads) or BEGIN IMMEDIATE (`transaction()`: the write lock at once, so a
    check-then-write cannot be interleaved by another process)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Per new sqlite3 connection: no implicit transactions; WAL so readers never wait for writers."""
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # a deleted row (/forget) is zeroed, not left in a free page
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        """Start the transaction SQLAlchemy begins: deferred by default, IMMEDIATE for writers."""
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN, "BEGIN"))


def open_engine(settings: Any) -> Engine:
    """The engine of the state database of `settings` (bot.config.Settings: `state_url`)."""
    return make_engine(settings.state_url)


def first_line(error: BaseException) -> str:
    """The driver's message without its traceback-like continuation lines."""
    original = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__


def _checkout(engine: Engine) -> Connection:
    """A pooled connection, or DatabaseUnavailable naming the database and the driver's reason."""
    try:
        return engine.connect()
    except sa_exc.DBAPIError as error:
        raise DatabaseUnavailable(f"cannot reach the database {redact(engine.url)}: {first_line(error)}") from error
    except sa_exc.TimeoutError as error:  # every pooled connection busy for POOL_TIMEOUT seconds
        raise DatabaseUnavailable(f"no free connection to the database {redact(engine.url)} within "
                                  f"{POOL_TIMEOUT} s") from error


@contextmanager
def lost_connection(engine: Engine) -> Iterator[None]:
    """A connection that breaks mid-transaction (server restart, network cut) becomes DatabaseUnavailable;
    SQLAlchemy has already invalidated it, so the pool will not hand it out again."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        if error.connection_invalidated:
            raise DatabaseUnavailable(
                f"lost the connection to the database {redact(engine.url)}: {first_line(error)}") from error
        raise


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A connection for reads (and, with `conn.commit()`, ad-hoc writes); returned to the pool on exit,
    an open transaction rolled back. On SQLite its reads see one snapshot per transaction (WAL)."""
    conn = _checkout(engine)
    with conn, lost_connection(engine):
        yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed when the block ends, rolled back on any exception.

    SQLite: BEGIN IMMEDIATE takes the database's write lock at once, so writers in every process and
    thread run one after the other and reads inside see a state nobody changes before the commit
    (what `State.write()` does today). PostgreSQL: a normal READ COMMITTED transaction; writes that
    must happen once rely on unique indexes (`insert_ignore`, `upsert`) or `advisory_lock`."""
    conn = _checkout(engine)
    with conn, lost_connection(engine):
        if backend(conn) == "sqlite":
            conn.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
        with conn.begin():
            yield conn


@contextmanager
def autocommit(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection for statements each complete by itself: reads, or (`write`) one write that is
    atomic on its own (an INSERT … ON CONFLICT, a conditional UPDATE, a data-modifying WITH).
    PostgreSQL: no transaction around them (each statement commits as it ends), so one round trip
    per statement instead of BEGIN, statement, COMMIT/ROLLBACK; never for two writes that must
    happen together, nor for streamed results (a server-side cursor needs a transaction).
    SQLite, where a round trip is a function call: `transaction(engine)` for a write (the write
    lock, as before), `connect(engine)` for reads."""
    if backend(engine) != "postgresql":
        with (transaction(engine) if write else connect(engine)) as conn:
            yield conn
        return
    conn = _checkout(engine)
    with conn, lost_connection(engine):
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


# ---- portable INSERT … ON CONFLICT ------------------------------------------------------------------
def insert(conn: Connection | Engine, table: Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
    """The dialect's INSERT construct for `table`, with `.on_conflict_do_nothing(index_elements=…)`,
    `.on_conflict_do_update(index_elements=…, set_=…)` and `.excluded` — same API on both backends."""
    return _dialect_insert(backend(conn), table)


def _dialect_insert(dialect: str, table: Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
    """`insert` by dialect name (for statements built once and cached per dialect)."""
    return pg_dialect.insert(table) if dialect == "postgresql" else sqlite_dialect.insert(table)


def _rows(rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row or many, as a list."""
    return [rows] if isinstance(rows, Mapping) else list(rows)


def insert_ignore(conn: Connection, table: Table, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                  on: Sequence[str], where: ColumnElement[bool] | TextClause | None = None) -> int:
    """INSERT … ON CONFLICT (on) [WHERE where] DO NOTHING; returns how many rows were inserted (0 for a
    row whose key exists, also when another process inserted it a moment earlier: the unique index
    decides). `on` names the columns of a primary key or unique index of `table`; `where` is the
    predicate of a partial unique index (e.g. one counted form per campaign and user)."""
    batch = _rows(rows)
    if not batch:
        return 0
    if where is not None:  # inline, never a parameter: PostgreSQL matches a partial index only to a predicate
        # it can prove, and a parameter is unknown once psycopg prepares the statement (its 6th run on a
        # connection: "no unique or exclusion constraint matching the ON CONFLICT specification")
        where = text(str(where.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})))
    stmt = insert(conn, table).on_conflict_do_nothing(index_elements=list(on), index_where=where)
    returned = [table.c[c] for c in on]
    return len(conn.execute(stmt.returning(*returned), batch).all())


_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # the drivers' positional placeholders


def insert_tuples(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT of many rows given as tuples in `columns` order, handed to the driver's executemany as
    they are: no dict per row and no per-row parameter processing by SQLAlchemy, which took more
    CPU than the database itself for the 10^6 answers of a CSV import. Only for columns whose
    types need no conversion (Text, Integer): the values go to the driver unchanged."""
    if not rows:
        return
    prep = conn.dialect.identifier_preparer
    marks = ", ".join([_MARKS[conn.dialect.paramstyle]] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) "
                         f"VALUES ({marks})", list(rows))


def upsert(conn: Connection, table: Table, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
           on: Sequence[str], update: Sequence[str] | None = None, keep_when_null: Sequence[str] = ()) -> None:
    """INSERT … ON CONFLICT (on) DO UPDATE: insert each row, or update the existing one.

    `update`: the columns an existing row takes from the new one (default: every given column but the
    key); `keep_when_null`: of those, the ones that keep their stored value when the new one is NULL
    (`coalesce(excluded.c, table.c)`, as the CSV import does for profile fields)."""
    batch = _rows(rows)
    if not batch:
        return
    columns = tuple(update if update is not None else [c for c in batch[0] if c not in on])
    conn.execute(_upsert_statement(backend(conn), table, tuple(on), columns, tuple(keep_when_null)), batch)


def upsert_statement(dialect: str, table: Table, on: Sequence[str], update: Sequence[str]) -> Any:
    """`upsert`'s statement for one dialect ("postgresql", "sqlite"), e.g. a module's constant for `pipelined`."""
    return _upsert_statement(dialect, table, tuple(on), tuple(update), ())


@lru_cache(maxsize=256)
def _upsert_statement(dialect: str, table: Table, on: tuple[str, ...], columns: tuple[str, ...],
                      keep_when_null: tuple[str, ...]) -> Any:
    """`upsert`'s statement, built once per shape: building and keying a statement costs more
    client CPU than running it (the rows are the execution's parameters, never part of it)."""
    stmt = _dialect_insert(dialect, table)
    if not columns:
        return stmt.on_conflict_do_nothing(index_elements=list(on))
    set_ = {c: func.coalesce(stmt.excluded[c], table.c[c]) if c in keep_when_null else stmt.excluded[c]
            for c in columns}
    return stmt.on_conflict_do_update(index_elements=list(on), set_=set_)


# ---- locks --------------------------------------------------------------------------------------
def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock name (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def _require_write_transaction(conn: Connection) -> None:
    """Locks live as long as a transaction: refuse a connection outside `transaction()` (a bug)."""
    if not conn.in_transaction():
        raise RuntimeError("a lock needs a transaction: use `with transaction(engine) as conn`")
    if backend(conn) == "sqlite" and conn.get_execution_options().get(_BEGIN) != "BEGIN IMMEDIATE":
        raise RuntimeError("on SQLite a lock is the write lock of `transaction()`: use `with transaction(engine)`")


def advisory_lock(conn: Connection, name: str) -> None:
    """Wait for the lock `name`, held until the transaction ends (commit or rollback).

    PostgreSQL: pg_advisory_xact_lock — every worker process that asks for the same name waits, e.g.
    around an access-token refresh. SQLite: `transaction()` already holds the database's write lock,
    which excludes every other writer, so nothing more is needed."""
    _require_write_transaction(conn)
    if backend(conn) == "postgresql":
        conn.execute(func.pg_advisory_xact_lock(lock_key(name)).select())


def try_advisory_lock(conn: Connection, name: str) -> bool:
    """Take the lock `name` if nobody holds it (True), else return False at once (PostgreSQL
    pg_try_advisory_xact_lock); always True on SQLite, where the transaction holds the write lock."""
    _require_write_transaction(conn)
    if backend(conn) == "postgresql":
        return bool(conn.execute(func.pg_try_advisory_xact_lock(lock_key(name)).select()).scalar())
    return True



def hold_lock(engine: Engine, name: str,
              reads: Sequence[tuple[ClauseElement, Mapping[str, Any]]] = ()) -> tuple[Connection, list[Any]] | None:
    """Try to take the lock `name` for as long as the caller keeps the returned connection (an open
    transaction holding pg_try_advisory_xact_lock); None, with nothing held, when another process
    has it. Never waits, so a caller polls with its own sleeps (a worker thread is not parked on
    the lock). Give it back with `release_lock`. A worker that dies loses its connection and with it
    the lock, at once. PostgreSQL only (on SQLite use `transaction`, whose write lock is the lock).

    Returns (the connection, the first row of each of `reads`): statements run right after the one
    that takes the lock, in the same round trip (`pipelined`), so each sees everything committed
    before the lock was taken; a caller that needs to look at something once it holds the lock
    spends no second round trip (the rows are dropped when the lock was not taken)."""
    conn = _checkout(engine)
    try:
        conn.begin()
        rows = pipelined(conn, [(_TRY_LOCK, {"ohbot_lock": lock_key(name)}), *reads])
        if rows[0][0]:
            return conn, rows[1:]
        conn.rollback()
    except BaseException:
        conn.close()
        raise
    conn.close()
    return None


_TRY_LOCK = sql.select(func.pg_try_advisory_xact_lock(sql.bindparam("ohbot_lock", type_=BigInteger)))


def pipelined(conn: Connection, statements: Sequence[tuple[ClauseElement, Mapping[str, Any]]], *,
              commit: bool = False) -> list[Any]:
    """PostgreSQL: run `statements` (each with one row's parameters) in `conn`'s transaction and, with
    `commit`, commit it, all in one round trip: psycopg's pipeline mode sends them together; the
    server runs them one after the other, each with its own snapshot (READ COMMITTED), so a statement
    sees what was committed before the one ahead of it ended (e.g. once that one took a lock).
    Returns the first row of each (None when it returns no rows). They go to the driver's connection
    compiled once (SQLAlchemy's own execution waits for each result in turn); a lost connection is
    DatabaseUnavailable, and the connection is not used again."""
    import psycopg  # PostgreSQL's driver, imported by the engine already

    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with lost_connection(conn.engine), (driver.pipeline() if psycopg.Pipeline.is_supported() else nullcontext()):
            cursors = [driver.execute(*_driver_statement(conn.dialect, statement, params))
                       for statement, params in statements]
            if commit:
                conn.commit()
    except psycopg.OperationalError as error:  # the driver's own error: SQLAlchemy did not see it
        conn.invalidate()
        raise DatabaseUnavailable(f"lost the connection to the database {redact(conn.engine.url)}: "
                                  f"{first_line(error)}") from error
    return [cursor.fetchone() if cursor.description is not None else None for cursor in cursors]


def _driver_statement(dialect: Any, statement: ClauseElement, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A statement as the driver takes it: its SQL (compiled once per statement and parameter names)
    and its parameters."""
    compiled = _compiled(dialect, statement, tuple(params))
    return compiled.string, compiled.construct_params(params)


@lru_cache(maxsize=64)
def _compiled(dialect: Any, statement: ClauseElement, keys: tuple[str, ...]) -> Any:
    """`_driver_statement`'s compilation (the statements are module constants or cached: few)."""
    return statement.compile(dialect=dialect, column_keys=list(keys))


def release_lock(conn: Connection) -> None:
    """End the transaction of `hold_lock` (releasing its lock) and return the connection; a
    connection that died meanwhile (its lock went with it) is discarded without an error."""
    try:
        conn.rollback()
    except sa_exc.DBAPIError:
        pass
    finally:
        conn.close()
