"""The web console's tables (issue #13): staff (accounts with argon2 password hashes and roles),
staff_sessions (log-ins shared by every worker), staff_login_failures (the lock-out) and staff_audit
(who exported or imported what, when).

Revision ID: 0007
Revises: 0006
A frozen revision (no imports from bot.*). A SQLite file made by State before migrations (with the
console's tables) may have them already: each is created only when missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
creates: tuple[str, ...] = ("staff", "staff_sessions", "staff_login_failures", "staff_audit")


def upgrade() -> None:
    """Create the four tables (and their indexes) unless they exist."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "staff" not in existing:
        op.create_table(
            "staff",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.Text()),
            sa.Column("role", sa.Text()),
            sa.Column("region", sa.Text()),
            sa.Column("password", sa.Text()),
            sa.Column("disabled", sa.Integer()),
            sa.Column("must_change", sa.Integer()),
            sa.Column("created", sa.Text()),
            sa.Column("updated", sa.Text()),
        )
        op.create_index("idx_staff_name", "staff", ["name"], unique=True)
    if "staff_sessions" not in existing:
        op.create_table(
            "staff_sessions",
            sa.Column("id", sa.Text(), primary_key=True),
            sa.Column("staff", sa.Integer()),
            sa.Column("csrf", sa.Text()),
            sa.Column("created", sa.Integer()),
            sa.Column("seen", sa.Integer()),
            sa.Column("expires", sa.Integer()),
        )
        op.create_index("idx_staff_sessions_staff", "staff_sessions", ["staff"])
    if "staff_login_failures" not in existing:
        op.create_table(
            "staff_login_failures",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.Text()),
            sa.Column("ip", sa.Text()),
            sa.Column("at", sa.Integer()),
        )
        op.create_index("idx_staff_login_failures_name", "staff_login_failures", ["name", "at"])
        op.create_index("idx_staff_login_failures_ip", "staff_login_failures", ["ip", "at"])
    if "staff_audit" not in existing:
        op.create_table(
            "staff_audit",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("at", sa.Text()),
            sa.Column("staff", sa.Text()),
            sa.Column("action", sa.Text()),
            sa.Column("target", sa.Text()),
            sa.Column("detail", sa.Text()),
        )
        op.create_index("idx_staff_audit_at", "staff_audit", ["at"])


def downgrade() -> None:
    """Drop the four tables."""
    for table in ("staff_audit", "staff_login_failures", "staff_sessions", "staff"):
        op.drop_table(table)
