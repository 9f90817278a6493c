"""usage that customers can see: meter events Stripe accepted, quota thresholds reached

Revision ID: 6c2d4f8a1e30
Revises: 5a7f3c91e2d4
Create Date: 2026-11-28 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c2d4f8a1e30"
down_revision: str | None = "5a7f3c91e2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_reports",
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("event_name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_usage_reports_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identifier", name=op.f("pk_usage_reports")),
    )
    op.create_index("ix_usage_reports_organization_reported_at", "usage_reports", ["organization_id", "reported_at"])
    op.create_table(
        "quota_notices",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("percent", sa.SmallInteger(), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_quota_notices_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "period", "percent", name=op.f("pk_quota_notices")),
    )


def downgrade() -> None:
    op.drop_table("quota_notices")
    op.drop_index("ix_usage_reports_organization_reported_at", table_name="usage_reports")
    op.drop_table("usage_reports")
