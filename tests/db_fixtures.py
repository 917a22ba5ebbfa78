"""Fixtures for state-database tests on both backends: a SQLite file and a real PostgreSQL
(a pytest plugin: tests/conftest.py loads it, so every test folder can use them).

PostgreSQL: `OHBOT_TEST_DATABASE_URL`, default postgresql://postgres@127.0.0.1:5432/test (trust auth).
Each test that uses it gets a fresh schema `ohbot_test_<run>_<n>` (search_path set through the URL's
libpq `options`, so every connection and every `ohbot` subprocess given that URL lands in it),
dropped when the test ends; whatever a crashed test left is dropped at the end of the session.
Unreachable PostgreSQL: those tests skip with a one-line reason, except under CI=true, where they fail.

Fixtures
--------
``db_url``       parametrised: ``sqlite`` (a file in tmp_path) and ``postgresql`` (a fresh schema).
``pg_url``       PostgreSQL only (tests of pg_terminate_backend, advisory-lock contention, …).
``sqlite_url``   a SQLite file URL in tmp_path.
``engine_for``   ``engine_for(url, **kw)``: `bot.storage.db.make_engine`, disposed after the test.
``state_url``    parametrised like ``db_url``, but ready for `State` / `ohbot` commands: on PostgreSQL
                 migrated (`ohbot db upgrade`: workers only check the schema); a SQLite file upgrades
                 itself when opened. Every engine a `State` makes during the test is disposed after it
                 (PostgreSQL's connection slots are shared by everybody on the machine).
"""
from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bot.storage import db as storage_db
from bot.storage.db import first_line, make_engine, redact

PG_URL = os.environ.get("OHBOT_TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
RUN = f"ohbot_test_{secrets.token_hex(4)}"  # a name, not test data: unique among concurrent runs
_numbers = itertools.count(1)


def with_search_path(url: str, schema: str) -> str:
    """`url` whose connections use `schema` first (libpq options=-csearch_path=…)."""
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def _unreachable(reason: str) -> None:
    """Skip (developer machine) or fail (CI=true) for want of PostgreSQL."""
    message = f"PostgreSQL not reachable at {redact(PG_URL)}: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: PostgreSQL is required)", pytrace=False)
    pytest.skip(f"{message} (set OHBOT_TEST_DATABASE_URL, or start it)")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An engine on the test database's default schema, for creating and dropping test schemas."""
    engine = make_engine(PG_URL, pool_size=1, max_overflow=2)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as error:  # any failure to connect: skip or fail with its first line
        engine.dispose()
        _unreachable(first_line(error))
    yield engine
    with engine.begin() as conn:
        for name in conn.execute(text("select nspname from pg_namespace where nspname like :p"),
                                 {"p": f"{RUN}%"}).scalars():
            conn.execute(text(f'drop schema "{name}" cascade'))
    engine.dispose()


@pytest.fixture
def engine_for() -> Iterator[Callable[..., Engine]]:
    """make_engine(url, **kw) whose pools are closed after the test (so schemas can be dropped)."""
    made: list[Engine] = []

    def make(url: str, **kw) -> Engine:
        """An engine remembered for disposal."""
        engine = make_engine(url, **kw)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for this test, as a database URL; dropped afterwards."""
    schema = f"{RUN}_{next(_numbers)}"
    with pg_admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    yield with_search_path(PG_URL, schema)
    with pg_admin.begin() as conn:
        conn.execute(text("set local lock_timeout = '20s'"))  # a transaction a test left open fails the drop, not the run
        conn.execute(text(f'drop schema "{schema}" cascade'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite state database file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'state' / 'ohbot.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on both backends: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def state_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`db_url` with the schema in place for `State`; engines made by State are disposed afterwards."""
    from bot.storage import migrate, state

    made: list[Engine] = []

    def recorded(url, **kw) -> Engine:
        """make_engine, remembered for disposal."""
        engine = storage_db.make_engine(url, **kw)
        made.append(engine)
        return engine

    monkeypatch.setattr(state, "make_engine", recorded)
    if db_url.startswith("postgresql"):
        engine = recorded(db_url)
        migrate.upgrade(engine)
    yield db_url
    for engine in made:
        engine.dispose()
