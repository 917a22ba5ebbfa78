"""The Telegram inbox (issue #11): every update recorded before Telegram is told it arrived, so that a
process killed before handling it handles it at its next start (bot/storage/inbox.py).

Revision ID: 0008
Revises: 0007
A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("telegram_inbox",)


def upgrade() -> None:
    """Create the table and its index unless they exist."""
    if "telegram_inbox" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "telegram_inbox",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("payload", sa.Text()),
        sa.Column("received_at", sa.Integer(), nullable=False),
        sa.Column("handled_at", sa.Integer()),
    )
    op.create_index("idx_telegram_inbox_handled", "telegram_inbox", ["handled_at"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("telegram_inbox")
