"""The text channels' tables (issue #12): channel_inbox (callback de-duplication), access_tokens
(platform tokens with one refresher) and text_menus (each user's last buttons).

Revision ID: 0003
Revises: 0002
A frozen revision (no imports from bot.*). Today's State creates these tables itself when it opens a
SQLite file (schema.py), and adoption stops at 0001 (0002 creates no table), so a database it made may
have them already: each is created only when missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("channel_inbox", "access_tokens", "text_menus")


def upgrade() -> None:
    """Create the three tables (and the inbox's index) unless they exist."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "channel_inbox" not in existing:
        op.create_table(
            "channel_inbox",
            sa.Column("channel", sa.Text(), primary_key=True),
            sa.Column("msg_key", sa.Text(), primary_key=True),
            sa.Column("received_at", sa.Integer(), nullable=False),
            sa.Column("reply", sa.Text()),
        )
        op.create_index("idx_channel_inbox_received", "channel_inbox", ["received_at"])
    if "access_tokens" not in existing:
        op.create_table(
            "access_tokens",
            sa.Column("name", sa.Text(), primary_key=True),
            sa.Column("token", sa.Text()),
            sa.Column("refresh_at", sa.Integer(), nullable=False),
            sa.Column("expires_at", sa.Integer(), nullable=False),
            sa.Column("lease_owner", sa.Text()),
            sa.Column("lease_until", sa.Integer(), nullable=False),
        )
    if "text_menus" not in existing:
        op.create_table(
            "text_menus",
            sa.Column("user", sa.Text(), primary_key=True),
            sa.Column("buttons", sa.Text(), nullable=False),
            sa.Column("updated", sa.Text()),
        )


def downgrade() -> None:
    """Drop the three tables."""
    for table in ("text_menus", "access_tokens", "channel_inbox"):
        op.drop_table(table)
