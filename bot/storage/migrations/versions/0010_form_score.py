"""forms keep their score (issue #14): `answered` (answers stored) and `correct` (of them right).

Revision ID: 0010
Revises: 0009
A province-wide report (10^6 respondents × 20 answers) re-totalled every form's answers in each of its
queries, about five passes over 2×10^7 answers. The score is now written where the answers are (the
quiz's answer, the CSV import) and the report reads it from the form. An answer counts as right when
its `correct` is neither 0 nor NULL, as the reports always counted it. Existing forms are scored from
their answers in one UPDATE … FROM (GROUP BY) statement (SQLite ≥ 3.33, PostgreSQL), so no figure
changes at the upgrade. A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()

#: Also what benchmarks/report_scale_bench.py runs after generating answers with SQL.
BACKFILL = """
update forms set answered = s.answered, correct = s.correct
from (select form, count(*) as answered,
             sum(case when coalesce(correct, 0) != 0 then 1 else 0 end) as correct
      from responses group by form) as s
where forms.id = s.form"""


def upgrade() -> None:
    """Add the columns (0 for a form without answers), then score every form from its answers."""
    op.add_column("forms", sa.Column("answered", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("forms", sa.Column("correct", sa.Integer(), nullable=False, server_default="0"))
    op.execute(sa.text(BACKFILL))


def downgrade() -> None:
    """Drop the columns (reports then score forms from their answers again)."""
    with op.batch_alter_table("forms") as batch:
        batch.drop_column("correct")
        batch.drop_column("answered")
