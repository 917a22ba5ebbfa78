"""One schema: the Alembic migrations (`ohbot db upgrade`, the start-up check) and tables.py's Core objects
(what queries use) describe the same tables, columns and indexes; a SQLite file made before migrations by
the old schema.py DDL (frozen in tests/storage/legacy_schema.py) is adopted and ends up identical;
upgrades and the start-up check."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from bot.cli import main
from bot.errors import SchemaOutdated
from bot.storage import migrate
from bot.storage.state import State, User
from bot.storage.tables import metadata, responses, users
from tests.storage.legacy_schema import FIRST_DDL, LEGACY_DDL


def _describe(url: str, engine_for) -> dict[str, Any]:
    """Tables → columns (name, type, primary key, nullable unless key) and indexes, by inspection."""
    inspector = inspect(engine_for(url))
    out: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        pk = inspector.get_pk_constraint(table)["constrained_columns"]
        # SQLite lets a non-INTEGER PRIMARY KEY column hold NULL unless NOT NULL is written; the
        # migrations write it (PostgreSQL implies it), schema.py does not: key columns differ only there.
        columns = [(c["name"], str(c["type"]).upper(), c["name"] in pk, c["nullable"] or c["name"] in pk)
                   for c in inspector.get_columns(table)]
        indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table))
        out[table] = {"columns": columns, "pk": pk, "indexes": indexes}
    return out


def _apply_ddl(path: Path, ddl: tuple[str, ...] = LEGACY_DDL) -> None:
    """A SQLite file made by the old schema.py's statements, exactly as the old State did it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for statement in ddl:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("ddl", [LEGACY_DDL, FIRST_DDL], ids=["last", "first"])
def test_a_pre_migration_file_is_adopted_into_exactly_the_migrated_schema(ddl, tmp_path: Path, engine_for) -> None:
    """Whichever version of the old DDL made a pilot's ohbot.db, after `upgrade` it has the same tables,
    columns and indexes as a database the migrations made from nothing."""
    _apply_ddl(tmp_path / "ddl.db", ddl)
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}"
    migrate.upgrade(engine_for(migrated))
    adopted = migrate.upgrade(engine_for(f"sqlite:///{tmp_path / 'ddl.db'}"))
    assert adopted.adopted == "0001"
    from_ddl = _describe(f"sqlite:///{tmp_path / 'ddl.db'}", engine_for)
    from_migrations = _describe(migrated, engine_for)
    assert list(from_migrations) == list(from_ddl)
    for table in from_ddl:
        assert from_migrations[table] == from_ddl[table], table
    assert from_ddl["responses"]["indexes"] == [
        ("idx_responses_campaign", ("campaign",), False), ("idx_responses_form_item_id", ("form", "item_id"), True)]
    assert ("uq_forms_counted", ("campaign", "user"), True) in from_ddl["forms"]["indexes"]


def test_tables_py_is_what_the_migrations_make(db_url: str, engine_for) -> None:
    """Alembic's own comparison (autogenerate) finds nothing to change between tables.py and the head."""
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_upgrade_creates_the_schema_once(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    assert migrate.current(engine) is None
    first = migrate.upgrade(engine)
    assert (first.before, first.after, first.adopted) == (None, migrate.head(), None)
    again = migrate.upgrade(engine)
    assert (again.before, again.after, again.adopted) == (migrate.head(), migrate.head(), None)
    assert "already at revision" in again.as_text("db")
    assert migrate.check_schema(engine) == migrate.head()
    assert set(inspect(engine).get_table_names()) == {t.name for t in metadata.sorted_tables} | {"alembic_version"}


def test_ids_are_generated_on_both_backends(db_url: str, engine_for) -> None:
    """`id INTEGER PRIMARY KEY`: SQLite's rowid alias, PostgreSQL's serial: inserts without an id number rows."""
    engine = engine_for(db_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(responses.insert(), [{"form": "f", "item_id": f"q{n}"} for n in range(3)])
        ids = conn.execute(select(responses.c.id).order_by(responses.c.id)).scalars().all()
    assert ids == [1, 2, 3]


def test_check_schema_says_what_to_run(db_url: str, engine_for) -> None:
    engine = engine_for(db_url)
    with pytest.raises(SchemaOutdated, match=r"no ohbot tables yet: run `ohbot db upgrade`"):
        migrate.check_schema(engine)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = 'ffff'"))
    with pytest.raises(SchemaOutdated, match="revision ffff, which this ohbot does not know"):
        migrate.check_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("delete from alembic_version"))
    with pytest.raises(SchemaOutdated, match=r"made before migrations: run `ohbot db upgrade`"):
        migrate.check_schema(engine)


def _legacy_rows(path: Path) -> None:
    """A user and a logged question, written as the old State wrote them."""
    conn = sqlite3.connect(path)
    conn.execute("insert into users (key, role, region, consent, pending, created, updated) "
                 "values ('u1', 'worker', '广东省', 1, '{}', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')")
    conn.execute("insert into unanswered (question, norm, user, asked_at) "
                 "values ('噪声体检多久一次？', '噪声体检多久一次', 'u1', '2024-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()


def test_a_sqlite_database_of_the_old_code_is_adopted(tmp_path: Path, engine_for) -> None:
    """ohbot.db as the old State made it (schema.py, no alembic_version) keeps its rows and gains the revision."""
    path = tmp_path / "ohbot.db"
    _apply_ddl(path)
    _legacy_rows(path)
    engine = engine_for(f"sqlite:///{path}")
    with pytest.raises(SchemaOutdated, match="made before migrations"):
        migrate.check_schema(engine)
    result = migrate.upgrade(engine)
    assert (result.before, result.adopted, result.after) == (None, "0001", migrate.head())
    assert "adopted the existing tables as revision 0001" in result.as_text("ohbot.db")
    assert migrate.check_schema(engine) == migrate.head()
    with engine.connect() as conn:
        assert conn.execute(select(users.c.key, users.c.region, users.c.consent)).all() == [("u1", "广东省", 1)]
        assert conn.execute(text("select question from unanswered")).scalars().all() == ["噪声体检多久一次？"]
    # and State opens it
    assert State(engine, "salt").get_user("u1").profile["region"] == "广东省"


def test_state_opens_an_old_data_dir_by_itself(tmp_path: Path) -> None:
    """`make run` on a pilot's data directory: State adopts and upgrades the old file at start-up."""
    path = tmp_path / "ohbot.db"
    _apply_ddl(path, FIRST_DDL)
    _legacy_rows(path)
    state = State(path, "salt")
    assert migrate.current(state.engine) == migrate.head()
    user = state.get_user("u1")
    assert (user.profile["region"], user.profile["enterprise"], user.consent) == ("广东省", None, True)
    state.save_user(User(key="u2", profile={"role": "employer"}))
    assert state.gaps()[0]["example"] == "噪声体检多久一次？"
    state.close()


def test_adoption_refuses_a_half_made_database(tmp_path: Path, engine_for) -> None:
    path = tmp_path / "half.db"
    conn = sqlite3.connect(path)
    conn.execute(LEGACY_DDL[0])  # users only
    conn.commit()
    conn.close()
    engine = engine_for(f"sqlite:///{path}")
    with pytest.raises(SchemaOutdated, match="has tables users but not campaigns, forms, responses, unanswered"):
        migrate.upgrade(engine)
    assert migrate.current(engine) is None


def test_adoption_checks_columns_and_commits_nothing_on_a_mismatch(tmp_path: Path, engine_for) -> None:
    path = tmp_path / "other.db"
    _apply_ddl(path)
    conn = sqlite3.connect(path)
    conn.execute("alter table forms add column colour TEXT")
    conn.commit()
    conn.close()
    engine = engine_for(f"sqlite:///{path}")
    with pytest.raises(SchemaOutdated, match="table forms has unknown columns colour"):
        migrate.upgrade(engine)
    assert migrate.current(engine) is None  # the stamp was rolled back with everything else


def test_sqlite_upgrades_itself_at_start_up_postgresql_does_not(sqlite_url: str, pg_url: str, engine_for) -> None:
    assert migrate.ensure_schema(engine_for(sqlite_url)) == migrate.head()
    with pytest.raises(SchemaOutdated, match="run `ohbot db upgrade`"):
        migrate.ensure_schema(engine_for(pg_url))
    assert migrate.current(engine_for(pg_url)) is None


def test_concurrent_upgrades_wait_for_each_other(db_url: str, engine_for) -> None:
    """Two deploy scripts at once: the migration lock makes the second find the work done."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: migrate.upgrade(engine_for(db_url)), range(2)))
    assert sorted(r.before or "" for r in results) == ["", migrate.head()]
    assert all(r.after == migrate.head() for r in results)


def test_cli_db_upgrade_and_current(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", db_url, "db", "current"]) == 2
    assert "run `ohbot db upgrade`" in capsys.readouterr().err
    assert main(["--database-url", db_url, "db", "upgrade"]) == 0
    assert f"upgraded from an empty database to revision {migrate.head()}" in capsys.readouterr().out
    assert main(["--database-url", db_url, "db", "current"]) == 0
    assert f"revision {migrate.head()} (the newest)" in capsys.readouterr().out


def test_head_read_from_the_files_is_alembics() -> None:
    """`head()` reads the revision files' own lines (no Alembic import at start-up): the same head."""
    assert migrate.head() == migrate.scripts().get_current_head()


def test_opening_a_current_database_does_not_import_alembic(db_url: str, engine_for) -> None:
    """The start-up check of an up-to-date database (every command, `ohbot report` included) runs
    without Alembic, Mako and Pygments: a third of a report process's import time."""
    import subprocess
    import sys

    migrate.upgrade(engine_for(db_url))
    code = ("import sys; from bot.storage import migrate; from bot.storage.db import make_engine; "
            f"print(migrate.ensure_schema(make_engine({db_url!r}))); "
            "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split("\n")[:2] == [migrate.head(), "[]"]


def test_postgresql_keeps_statistics_on_the_reports_day(pg_url: str, engine_for) -> None:
    """Migration 0011: statistics on the expression the report groups tied answers by (its day), computed
    at the upgrade; the report's expression is spelled as the statistics' (else PostgreSQL ignores them)."""
    import importlib

    from bot.awareness.report_sql import BUCKET_CHARS, _bucket

    engine = engine_for(pg_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT pg_get_statisticsobjdef_expressions(oid)::text FROM pg_statistic_ext "
                                  "WHERE stxname = 'forms_completed_day' "
                                  "AND stxnamespace = current_schema()::regnamespace")).scalar()
    revision = importlib.import_module("bot.storage.migrations.versions.0011_form_day_statistics")
    assert found == "{\"" + revision.DAY + "\"}"
    assert 10 in BUCKET_CHARS  # the day: the buckets counted inside the month where a cut falls
    compiled = str(_bucket(10).compile(engine, compile_kwargs={"literal_binds": True}))
    assert compiled == revision.DAY.replace("completed_at", "forms.completed_at")
