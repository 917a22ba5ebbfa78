"""The console's last computed campaign reports (issue #13): `report_snapshots`.

Revision ID: 0012
Revises: 0011
One row per report (campaign, grouping, region): the data version it was computed for, when, and
the report as JSON. A worker that has computed nothing yet (after a restart, or another worker behind
the load balancer) shows the stored report at once, marked with its time, while it computes the
current one (bot/web/report_cache.py). Aggregates only: no user ids.
A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("report_snapshots",)


def upgrade() -> None:
    """Create the table unless it exists."""
    if "report_snapshots" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "report_snapshots",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("report_snapshots")
