"""Alembic's entry point for the state database: runs the revisions on OUR engine and connection.

`ohbot db upgrade` (bot/storage/migrate.py) passes an open connection inside `transaction()` in
`config.attributes["connection"]`: the migration, the adoption stamp and the version row commit
together or not at all. The `alembic` command line (developers, see alembic.ini) has no connection:
it opens the state database of OHBOT_DATABASE_URL / the default the same way the bot does.
`render_as_batch` on SQLite: ALTER TABLE there can only add columns, so Alembic rebuilds tables.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.storage.tables import metadata


def run_on(connection: Connection) -> None:
    """Run the requested migration commands on `connection` (within the caller's transaction)."""
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    """`alembic upgrade --sql`: print the SQL for the URL's dialect instead of running it."""
    context.configure(url=url, target_metadata=metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Use the caller's connection, else the configured state database's engine."""
    given = context.config.attributes.get("connection")
    if given is not None:
        run_on(given)
        return
    from bot.config import load_settings
    from bot.storage.db import database_url, make_engine, transaction

    url = load_settings().state_url
    if context.is_offline_mode():
        run_offline(database_url(url).render_as_string(hide_password=False))
        return
    with transaction(make_engine(url)) as conn:
        run_on(conn)


main()
