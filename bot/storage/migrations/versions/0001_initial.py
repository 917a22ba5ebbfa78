"""The initial schema: the tables and indexes of bot/storage/schema.py as of issue #14.

Revision ID: 0001
Revises:
A frozen copy (no imports from bot.*): later changes to tables.py must come as new revisions.
A SQLite ohbot.db made by schema.py before migrations existed holds exactly these tables;
`ohbot db upgrade` stamps it with this revision instead of creating them (bot/storage/migrate.py).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("users", "unanswered", "campaigns", "forms", "responses")

PROFILE_FIELDS = ("role", "region", "industry", "enterprise_size", "sex", "age_band", "education", "years_service")


def upgrade() -> None:
    """Create users, unanswered, campaigns, forms and responses with their indexes."""
    op.create_table(
        "users",
        sa.Column("key", sa.Text(), primary_key=True),
        *(sa.Column(f, sa.Text()) for f in PROFILE_FIELDS),
        sa.Column("consent", sa.Integer()),
        sa.Column("pending", sa.Text()),
        sa.Column("created", sa.Text()),
        sa.Column("updated", sa.Text()),
    )
    op.create_table(
        "unanswered",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("question", sa.Text()),
        sa.Column("norm", sa.Text()),
        sa.Column("user", sa.Text()),
        sa.Column("asked_at", sa.Text()),
    )
    op.create_index("idx_unanswered_norm", "unanswered", ["norm"])
    op.create_table(
        "campaigns",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("start", sa.Text()),
        sa.Column("end", sa.Text()),
        sa.Column("region", sa.Text()),
        sa.Column("threshold", sa.Float()),
        sa.Column("form_size", sa.Integer()),
        sa.Column("status", sa.Text()),
        sa.Column("created", sa.Text()),
    )
    op.create_table(
        "forms",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("campaign", sa.Text()),
        sa.Column("user", sa.Text()),
        sa.Column("kind", sa.Text()),
        sa.Column("items", sa.Text()),
        sa.Column("position", sa.Integer()),
        sa.Column("started_at", sa.Text()),
        sa.Column("completed_at", sa.Text()),
        sa.Column("source", sa.Text()),
    )
    op.create_index("idx_forms_campaign_user", "forms", ["campaign", "user"])
    op.create_table(
        "responses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("form", sa.Text()),
        sa.Column("campaign", sa.Text()),
        sa.Column("user", sa.Text()),
        sa.Column("item_id", sa.Text()),
        sa.Column("answer", sa.Text()),
        sa.Column("correct", sa.Integer()),
        sa.Column("answered_at", sa.Text()),
    )
    op.create_index("idx_responses_form_item_id", "responses", ["form", "item_id"], unique=True)
    op.create_index("idx_responses_campaign", "responses", ["campaign"])


def downgrade() -> None:
    """Drop the five tables (and with them their indexes)."""
    for table in ("responses", "forms", "campaigns", "unanswered", "users"):
        op.drop_table(table)
