"""The answers' tables (issue #9): conversation (each user's last question, for follow-ups), answers
(every reply, so that feedback can name it) and feedback (👍/👎 with the question, the answer and a reason).

Revision ID: 0004
Revises: 0003
A frozen revision (no imports from bot.*). Today's State creates these tables itself when it opens a
SQLite file (schema.py), so a database it made may have them already: each is created only when missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("conversation", "answers", "feedback")


def upgrade() -> None:
    """Create the three tables (and their indexes) unless they exist."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "conversation" not in existing:
        op.create_table(
            "conversation",
            sa.Column("user", sa.Text(), primary_key=True),
            sa.Column("question", sa.Text()),
            sa.Column("answer_id", sa.Integer()),
            sa.Column("more_id", sa.Text()),
            sa.Column("asked_at", sa.Text()),
        )
    if "answers" not in existing:
        op.create_table(
            "answers",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("user", sa.Text()),
            sa.Column("question", sa.Text()),
            sa.Column("norm", sa.Text()),
            sa.Column("answer", sa.Text()),
            sa.Column("decision", sa.Text()),
            sa.Column("door", sa.Text()),
            sa.Column("faq_id", sa.Text()),
            sa.Column("confidence", sa.Float()),
            sa.Column("asked_at", sa.Text()),
        )
        op.create_index("idx_answers_user", "answers", ["user"])
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("answer_id", sa.Integer()),
            sa.Column("user", sa.Text()),
            sa.Column("vote", sa.Text()),
            sa.Column("reason", sa.Text()),
            sa.Column("question", sa.Text()),
            sa.Column("norm", sa.Text()),
            sa.Column("answer", sa.Text()),
            sa.Column("created", sa.Text()),
        )
        op.create_index("idx_feedback_answer_user", "feedback", ["answer_id", "user"], unique=True)
        op.create_index("idx_feedback_norm", "feedback", ["norm"])


def downgrade() -> None:
    """Drop the three tables."""
    for table in ("feedback", "answers", "conversation"):
        op.drop_table(table)
