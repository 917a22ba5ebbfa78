"""forms keep the profile they were answered with (issue #11): one column per profile field.

Revision ID: 0009
Revises: 0008
Reports and exports group a form by the profile it was answered with, not by the user's current
profile: a bot user who changes /region later, or a respondent id imported again into another
campaign with another region, no longer changes an earlier campaign's report. Existing forms get
the current profile of their user (the best that is known: what the reports showed until now), so
no figure changes at the upgrade. A frozen revision (no imports from bot.*).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ()

FIELDS = ("role", "region", "industry", "enterprise_size", "sex", "age_band", "education", "years_service",
          "enterprise")


def upgrade() -> None:
    """Add the columns, then copy each form's user profile into them (one statement)."""
    for name in FIELDS:
        op.add_column("forms", sa.Column(name, sa.Text()))
    copies = ", ".join(f'"{f}" = (select u."{f}" from users u where u.key = forms."user")' for f in FIELDS)
    op.execute(sa.text(f"update forms set {copies}"))


def downgrade() -> None:
    """Drop the columns (reports then read the users' current profiles again)."""
    with op.batch_alter_table("forms") as batch:
        for name in FIELDS:
            batch.drop_column(name)
