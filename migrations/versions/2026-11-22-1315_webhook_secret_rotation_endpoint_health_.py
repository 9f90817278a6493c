"""webhook secret rotation, endpoint health, retry schedule start

`is_active` becomes `enabled` (renamed, values kept). Deliveries already under way get their
schedule's start from their first logged attempt, so their retries stay where they were due.

Revision ID: f859f3328e8a
Revises: aea646507ac5
Create Date: 2026-11-22 13:15:02.572130
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f859f3328e8a"
down_revision: str | None = "aea646507ac5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("schedule_start_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE webhook_deliveries d SET schedule_start_at = "
        "(SELECT min(a.attempted_at) FROM webhook_attempts a WHERE a.delivery_id = d.id) "
        "WHERE d.attempt_count > 0"
    )
    op.add_column("webhook_endpoints", sa.Column("previous_secret", sa.String(length=100), nullable=True))
    op.add_column(
        "webhook_endpoints", sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.alter_column("webhook_endpoints", "is_active", new_column_name="enabled")
    op.add_column("webhook_endpoints", sa.Column("disabled_reason", sa.String(length=500), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_endpoints", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "failing_since")
    op.drop_column("webhook_endpoints", "disabled_at")
    op.drop_column("webhook_endpoints", "disabled_reason")
    op.alter_column("webhook_endpoints", "enabled", new_column_name="is_active")
    op.drop_column("webhook_endpoints", "previous_secret_expires_at")
    op.drop_column("webhook_endpoints", "previous_secret")
    op.drop_column("webhook_deliveries", "schedule_start_at")
