"""The web chat's per-IP request counts (issue #13): rate_limits (key, slot, hits), shared by every worker.

Revision ID: 0005
Revises: 0004
A frozen revision (no imports from bot.*). Today's State creates this table itself when it opens a
SQLite file (schema.py), so a database it made may have it already: it is created only when missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("rate_limits",)


def upgrade() -> None:
    """Create the table and its index unless they exist."""
    if "rate_limits" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("hits", sa.Integer(), nullable=False),
    )
    op.create_index("idx_rate_limits_slot", "rate_limits", ["slot"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("rate_limits")
