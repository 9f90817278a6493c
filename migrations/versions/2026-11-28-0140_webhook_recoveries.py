"""webhook recoveries: POST /v1/webhooks/{id}/recover, and the deliveries (kind recovery) each makes;
license notices: license.expiring and license.expired recorded once each

Revision ID: 8d3e0f5a2b74
Revises: 7c2d9e4f1a63
Create Date: 2026-11-28 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d3e0f5a2b74"
down_revision: str | None = "7c2d9e4f1a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "license_notices",
        sa.Column("license_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expiry_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name=op.f("fk_license_notices_license_id_licenses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("license_id", "kind", "expiry_date", name=op.f("pk_license_notices")),
    )
    op.create_table(
        "webhook_recoveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("events_total", sa.Integer(), nullable=True),
        sa.Column("events_sent", sa.Integer(), nullable=False),
        sa.Column("stopped_reason", sa.String(length=500), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'stopped')", name=op.f("ck_webhook_recoveries_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_recoveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_recoveries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_recoveries")),
    )
    op.create_index(
        "ix_webhook_recoveries_endpoint_id_created_at",
        "webhook_recoveries",
        ["endpoint_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_webhook_recoveries_running",
        "webhook_recoveries",
        ["endpoint_id"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.add_column("webhook_deliveries", sa.Column("recovery_id", sa.String(length=32), nullable=True))
    op.create_foreign_key(
        op.f("fk_webhook_deliveries_recovery_id_webhook_recoveries"),
        "webhook_deliveries",
        "webhook_recoveries",
        ["recovery_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "uq_webhook_deliveries_recovery_event",
        "webhook_deliveries",
        ["recovery_id", "event_id"],
        unique=True,
        postgresql_where=sa.text("recovery_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_webhook_deliveries_kind_known"), "webhook_deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_kind_known"),
        "webhook_deliveries",
        "kind IN ('event', 'redelivery', 'test', 'recovery')",
    )


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE kind = 'recovery'")
    op.drop_constraint(op.f("ck_webhook_deliveries_kind_known"), "webhook_deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_kind_known"), "webhook_deliveries", "kind IN ('event', 'redelivery', 'test')"
    )
    op.drop_index("uq_webhook_deliveries_recovery_event", table_name="webhook_deliveries")
    op.drop_constraint(
        op.f("fk_webhook_deliveries_recovery_id_webhook_recoveries"), "webhook_deliveries", type_="foreignkey"
    )
    op.drop_column("webhook_deliveries", "recovery_id")
    op.drop_index("uq_webhook_recoveries_running", table_name="webhook_recoveries")
    op.drop_index("ix_webhook_recoveries_endpoint_id_created_at", table_name="webhook_recoveries")
    op.drop_table("webhook_recoveries")
    op.drop_table("license_notices")
