"""users.enterprise: the bureau's enterprise code of an imported respondent, stored hashed (issue #15).

Revision ID: 0002
Revises: 0001
The sampling unit of design-based awareness intervals (bot/awareness/design.py). A frozen revision (no
imports from bot.*). Today's State adds the column itself when it opens a SQLite file (schema.py
ADDED_COLUMNS), so a database it made and that is adopted at 0001 may have the column already: it is
added only when missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()


def upgrade() -> None:
    """Add users.enterprise (TEXT, nullable) unless it is there."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "enterprise" not in columns:
        op.add_column("users", sa.Column("enterprise", sa.Text()))


def downgrade() -> None:
    """Drop users.enterprise."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("enterprise")
