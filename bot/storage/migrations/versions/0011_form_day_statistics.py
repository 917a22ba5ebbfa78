"""PostgreSQL statistics on each form's completion day (issues #13, #14): `forms_completed_day`.

Revision ID: 0011
Revises: 0010
The campaign report's item histogram counts the answers by (item, right, form score, form length,
completion day): the day buckets the form order, so the upper–lower index reads tied respondents of
one day only (bot/awareness/report_sql.py). Without statistics on that expression PostgreSQL guesses
its distinct values, expects hundreds of thousands of groups and then neither aggregates in its
parallel workers nor before gathering their rows: the pass over 2×10^7 answers took about twice as
long. Extended statistics on an expression need PostgreSQL ≥ 14; on older servers and on SQLite
(which has no such statistics and aggregates by sorting) nothing is made. The back-fill is an ANALYZE
of forms, so the statistics exist from the upgrade on, not only after autovacuum's next analyze.
A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()

#: The report's day: bot.awareness.report_sql._day (DAY_CHARS = 10), spelled exactly as it is compiled.
DAY = "substr(completed_at, 1, 10)"


def _postgresql_14() -> bool:
    bind = op.get_bind()
    return bind.dialect.name == "postgresql" and (bind.dialect.server_version_info or (0,)) >= (14,)


def upgrade() -> None:
    """Create the statistics and compute them (ANALYZE forms) on PostgreSQL ≥ 14."""
    if _postgresql_14():
        op.execute(sa.text(f"CREATE STATISTICS IF NOT EXISTS forms_completed_day ON ({DAY}) FROM forms"))
        op.execute(sa.text("ANALYZE forms"))


def downgrade() -> None:
    """Drop the statistics."""
    if _postgresql_14():
        op.execute(sa.text("DROP STATISTICS IF EXISTS forms_completed_day"))
