"""One counted form per campaign and user, as a rule of the database (issue #14).

Revision ID: 0006
Revises: 0005
A partial unique index on forms (campaign, "user") WHERE kind = 'counted': with N worker processes on
PostgreSQL, two taps on 开始测评 that reach two processes at once cannot both start a counted form;
bot/quiz/forms.py inserts the counted form with INSERT … ON CONFLICT DO NOTHING and falls back to a
practice form. Partial indexes exist on SQLite (≥ 3.8) and PostgreSQL alike.

A database made by older code cannot hold two counted forms of one user in one campaign (its check
and insert ran under SQLite's write lock), but should one exist, every such form but the earliest
completed one becomes kind 'superseded', which no report or export reads: the reports skipped
those forms already, so no figure changes. A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()

_SUPERSEDE = """
update forms set kind = 'superseded' where kind = 'counted' and id not in (
  select id from (
    select id, row_number() over (partition by campaign, "user"
      order by case when completed_at is null then 1 else 0 end, completed_at, started_at, id) as n
    from forms where kind = 'counted'
  ) ranked where n = 1
)"""


def upgrade() -> None:
    """Relabel duplicate counted forms (none in practice), then create the partial unique index."""
    op.execute(sa.text(_SUPERSEDE))
    op.create_index("uq_forms_counted", "forms", ["campaign", "user"], unique=True,
                    sqlite_where=sa.text("kind = 'counted'"), postgresql_where=sa.text("kind = 'counted'"))


def downgrade() -> None:
    """Drop the index (superseded forms stay superseded)."""
    op.drop_index("uq_forms_counted", table_name="forms")
