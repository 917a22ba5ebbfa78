"""Versioned schema of the state database: `ohbot db upgrade`, `ohbot db current`, the start-up check.

What: the Alembic revisions in bot/storage/migrations/ applied on our engine (bot/storage/db.py),
in one transaction per upgrade, under a lock so two deploy scripts cannot migrate at once;
`check_schema` compares the database's revision with the code's newest one and says what to do.

Adoption: a SQLite ohbot.db made before migrations (by schema.py's `CREATE TABLE IF NOT EXISTS`)
has the tables but no `alembic_version`. `upgrade` recognises the revisions whose tables all exist
(each revision lists them in `creates`), stamps the newest of those and applies only the rest;
then every table of tables.py must have exactly its columns, or nothing is committed.

Start-up is light: the check that a database is at the newest revision reads `alembic_version` with
one query and the revision files' `revision =` / `down_revision =` lines; Alembic (with Mako and
Pygments, about a third of `ohbot report`'s import time) is imported only to migrate or to explain an
outdated schema.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from bot.errors import SchemaOutdated
from bot.storage.db import advisory_lock, backend, connect, redact, transaction
from bot.storage.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
MIGRATION_LOCK = "ohbot:migrations"
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None  # the revision found (None: no alembic_version, i.e. empty or pre-migration)
    after: str  # the revision now (the newest)
    adopted: str | None  # the revision stamped on tables that existed already, if any

    def as_text(self, url: str) -> str:
        """One line for the operator: what `ohbot db upgrade` did."""
        if self.adopted:
            return (f"{url}: adopted the existing tables as revision {self.adopted}"
                    + (f", upgraded to {self.after}" if self.after != self.adopted else ""))
        if self.before == self.after:
            return f"{url}: already at revision {self.after} (the newest)"
        return f"{url}: upgraded from {self.before or 'an empty database'} to revision {self.after}"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file: our script folder, and the connection env.py uses."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def scripts() -> ScriptDirectory:
    """The revisions shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*(None|"([^"]+)")', re.MULTILINE)


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision: what this code's queries expect. Read from the revision files' own
    `revision = "…"` and `down_revision = "…"` lines (the one revision no other revises), without
    importing Alembic; tests/storage/test_schema.py checks it is Alembic's head."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        for key, _, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if key == "revision" else revised).add(value)
    heads = revisions - revised
    if len(heads) != 1:  # pragma: no cover - the package ships one linear history
        raise RuntimeError(f"not one newest revision in {MIGRATIONS}: {sorted(heads)}")
    return heads.pop()


def _revision(conn: Connection) -> str | None:
    """The revision recorded in the database (None: no alembic_version table or no row)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def current(engine: Engine) -> str | None:
    """The database's revision (None when it has none yet)."""
    with connect(engine) as conn:
        return _revision(conn)


def _tables(conn: Connection) -> set[str]:
    """Names of the tables in the connection's schema (the search_path's first on PostgreSQL)."""
    return set(inspect(conn).get_table_names()) - {VERSION_TABLE}


def _oldest_first() -> list[Script]:
    """Every revision, base first (the history is linear)."""
    return list(reversed(list(scripts().walk_revisions())))


def _creates(script: Script) -> set[str]:
    """The tables a revision module declares it creates."""
    return set(getattr(script.module, "creates", ()))


def adoptable(conn: Connection) -> str | None:
    """The newest revision whose tables, and those of every revision before it, all exist already;
    None for a database without our tables. SchemaOutdated when only some tables of a revision exist
    (a half-made or foreign database: nothing is guessed)."""
    existing = _tables(conn)
    adopted = None
    for script in _oldest_first():
        wanted = _creates(script)
        if wanted and wanted <= existing:
            adopted = script.revision
            continue
        if wanted & existing:
            raise SchemaOutdated(
                f"the database has tables {', '.join(sorted(wanted & existing))} but not "
                f"{', '.join(sorted(wanted - existing))} of revision {script.revision}: not a database ohbot made; "
                "use an empty database")
        break
    return adopted


def verify_tables(conn: Connection, where: str = "the database") -> None:
    """Every table of tables.py exists with exactly its columns, else SchemaOutdated naming the first
    difference (what an adopted or copied database must satisfy)."""
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            raise SchemaOutdated(f"{where} has no table {table.name}: run `ohbot db upgrade`")
        found = {c["name"] for c in inspector.get_columns(table.name)}
        wanted = {c.name for c in table.columns}
        if found != wanted:
            missing, extra = sorted(wanted - found), sorted(found - wanted)
            raise SchemaOutdated(
                f"{where}: table {table.name} " + "; ".join(
                    ([f"lacks columns {', '.join(missing)}"] if missing else [])
                    + ([f"has unknown columns {', '.join(extra)}"] if extra else []))
                + " (made by another version of ohbot?)")


def upgrade(engine: Engine) -> UpgradeResult:
    """Bring the database to the newest revision (creating every table of an empty one), adopting
    a pre-migration SQLite database. One transaction (PostgreSQL and SQLite DDL are transactional):
    a failing migration leaves the database as it was. Concurrent upgrades wait for each other."""
    from alembic import command

    with transaction(engine) as conn:
        advisory_lock(conn, MIGRATION_LOCK)
        before = _revision(conn)
        adopted = adoptable(conn) if before is None else None
        if adopted:
            command.stamp(alembic_config(conn), adopted)
        command.upgrade(alembic_config(conn), "head")
        if adopted:
            verify_tables(conn)
        after = _revision(conn)
    assert after is not None
    return UpgradeResult(before, after, adopted)


def check_schema(engine: Engine) -> str:
    """The database's revision when it is the newest; else SchemaOutdated saying what to run.
    Start-up calls this: a worker never runs on a schema its queries do not expect."""
    with connect(engine) as conn:
        found = _revision(conn)
        ours = _tables(conn) & {t.name for t in metadata.sorted_tables}
    newest = head()
    if found == newest:
        return found
    url = redact(engine.url)
    if found is None and ours:
        raise SchemaOutdated(f"the database {url} was made before migrations: run `ohbot db upgrade` "
                             "(it adopts the existing tables)")
    if found is None:
        raise SchemaOutdated(f"the database {url} has no ohbot tables yet: run `ohbot db upgrade`")
    known = {s.revision for s in _oldest_first()}
    if found not in known:
        raise SchemaOutdated(f"the database {url} is at revision {found}, which this ohbot does not know "
                             "(migrated by a newer version?): run the newer ohbot")
    raise SchemaOutdated(f"the database {url} is at revision {found}, this ohbot needs {newest}: "
                         "run `ohbot db upgrade`")


def ensure_schema(engine: Engine) -> str:
    """Start-up: the embedded SQLite default upgrades itself (one process, nothing to coordinate, and
    `make run` needs no extra step); PostgreSQL is only checked, because N workers must not race a
    migration: the operator runs `ohbot db upgrade` once per deploy. Returns the revision."""
    if backend(engine) == "sqlite":
        found = current(engine)
        if found != head() and (found is None or found in {s.revision for s in _oldest_first()}):
            upgrade(engine)  # a revision unknown to this code is refused by check_schema below
    return check_schema(engine)
