"""Move a state database to another backend: `ohbot db copy/export/import` (a pilot's SQLite file into
PostgreSQL when a campaign grows; or a PostgreSQL database into one SQLite file as a snapshot).

All or nothing: the target is migrated to the newest revision, must hold no rows, and receives every
table inside ONE transaction; before the commit each table's row count in the target is compared
with the source's (read in one snapshot), and any difference rolls everything back with a one-line
error. Rows keep their ids; PostgreSQL's id sequences are moved past the copied ids.
"""
from __future__ import annotations

from sqlalchemy import Connection, Engine, func, inspect, select, text
from sqlalchemy import exc as sa_exc

from bot.errors import InputError, OhbotError
from bot.storage.db import backend, connect, first_line, redact, transaction
from bot.storage.migrate import VERSION_TABLE, check_schema, head, upgrade, verify_tables
from bot.storage.tables import TABLES

BATCH = 5000  # rows per read and per multi-row insert


def _count(conn: Connection, table_name: str) -> int:
    """Rows in one table of TABLES."""
    table = next(t for t in TABLES if t.name == table_name)
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _check_source(conn: Connection, url: str) -> None:
    """The source must have exactly this code's tables and columns (a newer or older schema would lose
    or misplace data), at the newest revision or made before migrations (a pilot's ohbot.db)."""
    found = inspect(conn).get_table_names()
    unknown = sorted(set(found) - {t.name for t in TABLES} - {VERSION_TABLE})
    if unknown:
        raise InputError(f"the source {url} has tables this ohbot cannot copy ({', '.join(unknown)}): "
                         "use the ohbot version that made it")
    verify_tables(conn, where=f"the source {url}")
    if VERSION_TABLE in found:
        revision = conn.execute(text(f"select version_num from {VERSION_TABLE}")).scalar()
        if revision not in (None, head()):
            raise InputError(f"the source {url} is at revision {revision}, not {head()}: "
                             "run `ohbot db upgrade` on it first")


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: serial ids continue after the copied ones (explicit ids do not move a sequence)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in TABLES:
        column = table.autoincrement_column
        if column is None:
            continue
        conn.execute(text(f"select setval(pg_get_serial_sequence(:table, :column), "
                          f"coalesce((select max({quote(column.name)}) from {quote(table.name)}), 0) + 1, false)"),
                     {"table": table.name, "column": column.name})


def copy_database(source: Engine, target: Engine, batch: int = BATCH) -> dict[str, int]:
    """Copy every table of `source` into the empty `target`; returns rows per table (verified equal).

    InputError: the target already holds rows, the two URLs are one database, or the source's schema
    is not this code's. OhbotError: a count differs after copying (nothing was committed)."""
    src_url, dst_url = redact(source.url), redact(target.url)
    if src_url == dst_url:
        raise InputError(f"source and target are the same database ({src_url})")
    with connect(source) as src:
        if backend(src) == "postgresql":  # every read below sees one snapshot
            src.execution_options(isolation_level="REPEATABLE READ")
        _check_source(src, src_url)
    upgrade(target)
    check_schema(target)
    counts: dict[str, int] = {}
    with connect(source) as src, transaction(target) as dst:
        if backend(src) == "postgresql":
            src.execution_options(isolation_level="REPEATABLE READ")
        occupied = {t.name: n for t in TABLES if (n := _count(dst, t.name))}
        if occupied:
            held = ", ".join(f"{name} {n} rows" for name, n in occupied.items())
            raise InputError(f"the target {dst_url} already holds data ({held}): copy only into an empty database")
        for table in TABLES:
            counts[table.name] = _count(src, table.name)
            order = list(table.primary_key.columns)
            result = src.execute(select(table).order_by(*order).execution_options(yield_per=batch))
            for rows in result.mappings().partitions(batch):
                try:
                    dst.execute(table.insert(), [dict(r) for r in rows])
                except sa_exc.DBAPIError as error:
                    if error.connection_invalidated:
                        raise  # DatabaseUnavailable (transaction())
                    raise OhbotError(f"copy to {dst_url} failed in table {table.name}: {first_line(error)}; "
                                     "nothing was copied") from error
        if backend(dst) == "postgresql":
            _reset_sequences(dst)
        copied = {t.name: _count(dst, t.name) for t in TABLES}
        wrong = [f"{name} {copied[name]} of {n}" for name, n in counts.items() if copied[name] != n]
        if wrong:
            raise OhbotError(f"copy to {dst_url} failed verification (rows in target of source: {', '.join(wrong)}); "
                             "nothing was copied")
    return counts
