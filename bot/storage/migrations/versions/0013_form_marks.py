"""forms keep their answers' marks (issue #14): `marks`, a JSON array of "1<item id>" / "0<item id>".

Revision ID: 0013
Revises: 0012
A province-wide report (10^6 respondents × 20 answers) joined 2×10^7 answers to their forms to count
each item's answers by the form's score and day: 11–14 s of one PostgreSQL backend's CPU for the join
alone. Each form now carries its answers' marks (right "1" or wrong "0", then the item id; in no
particular order), written where its answers and score are (the quiz's answer, the CSV import), so the
report reads the forms table only, unnesting the marks (json_each on SQLite, json_array_elements_text
on PostgreSQL). An answer counts as right when its `correct` is neither 0 nor NULL, as forms.correct
counts it (migration 0010). Existing forms get their marks from their answers in one UPDATE … FROM
(GROUP BY) statement, so no figure changes at the upgrade. A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()

_MARK = "case when coalesce(correct, 0) != 0 then '1' else '0' end || item_id"
#: By database (the JSON aggregate's name differs); also what benchmarks/report_scale_bench.py and the
#: tests that write answers directly (tests/awareness/reference.py) run.
BACKFILL = {
    "postgresql": f"""
update forms set marks = s.marks
from (select form, json_agg({_MARK})::text as marks from responses group by form) as s
where forms.id = s.form""",
    "sqlite": f"""
update forms set marks = s.marks
from (select form, json_group_array({_MARK}) as marks from responses group by form) as s
where forms.id = s.form""",
}


def upgrade() -> None:
    """Add the column ("[]" for a form without answers), then mark every form from its answers."""
    op.add_column("forms", sa.Column("marks", sa.Text(), nullable=False, server_default="[]"))
    op.execute(sa.text(BACKFILL[op.get_bind().dialect.name]))


def downgrade() -> None:
    """Drop the column (reports then join the answers to their forms again)."""
    with op.batch_alter_table("forms") as batch:
        batch.drop_column("marks")
