"""jobs' own webhooks (`webhook`, `webhook_events_filter`; deliveries of kind job, signed with the
organization's job-webhook secret) and ordered delivery per resource (`ordering` on webhook endpoints)

Revision ID: 9e4f1a6b3c85
Revises: 8d3e0f5a2b74
Create Date: 2026-11-28 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9e4f1a6b3c85"
down_revision: str | None = "8d3e0f5a2b74"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints", sa.Column("ordering", sa.String(length=16), server_default="none", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_webhook_endpoints_ordering_known"), "webhook_endpoints", "ordering IN ('none', 'per_resource')"
    )
    op.add_column("jobs", sa.Column("webhook", sa.String(length=2048), nullable=True))
    op.add_column("jobs", sa.Column("webhook_events_filter", postgresql.ARRAY(sa.String(length=16)), nullable=True))
    op.create_table(
        "job_webhook_secrets",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_job_webhook_secrets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "livemode", name=op.f("pk_job_webhook_secrets")),
    )
    op.alter_column("webhook_deliveries", "endpoint_id", existing_type=sa.String(length=32), nullable=True)
    op.add_column("webhook_deliveries", sa.Column("resource_id", sa.String(length=100), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("job_id", sa.String(length=32), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("url", sa.String(length=2048), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_foreign_key(
        op.f("fk_webhook_deliveries_job_id_jobs"), "webhook_deliveries", "jobs", ["job_id"], ["id"], ondelete="CASCADE"
    )
    op.create_index("ix_webhook_deliveries_job_id", "webhook_deliveries", ["job_id"], unique=False)
    op.create_index(
        "ix_webhook_deliveries_resource_pending",
        "webhook_deliveries",
        ["endpoint_id", "resource_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending' AND resource_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_webhook_deliveries_kind_known"), "webhook_deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_kind_known"),
        "webhook_deliveries",
        "kind IN ('event', 'redelivery', 'test', 'recovery', 'job')",
    )
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_target_known"), "webhook_deliveries", "(kind = 'job') = (endpoint_id IS NULL)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE kind = 'job'")
    op.drop_constraint(op.f("ck_webhook_deliveries_target_known"), "webhook_deliveries", type_="check")
    op.drop_constraint(op.f("ck_webhook_deliveries_kind_known"), "webhook_deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_kind_known"),
        "webhook_deliveries",
        "kind IN ('event', 'redelivery', 'test', 'recovery')",
    )
    op.drop_index("ix_webhook_deliveries_resource_pending", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_job_id", table_name="webhook_deliveries")
    op.drop_constraint(op.f("fk_webhook_deliveries_job_id_jobs"), "webhook_deliveries", type_="foreignkey")
    op.drop_column("webhook_deliveries", "payload")
    op.drop_column("webhook_deliveries", "url")
    op.drop_column("webhook_deliveries", "job_id")
    op.drop_column("webhook_deliveries", "resource_id")
    op.alter_column("webhook_deliveries", "endpoint_id", existing_type=sa.String(length=32), nullable=False)
    op.drop_table("job_webhook_secrets")
    op.drop_column("jobs", "webhook_events_filter")
    op.drop_column("jobs", "webhook")
    op.drop_constraint(op.f("ck_webhook_endpoints_ordering_known"), "webhook_endpoints", type_="check")
    op.drop_column("webhook_endpoints", "ordering")
