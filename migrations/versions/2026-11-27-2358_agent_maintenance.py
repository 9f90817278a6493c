"""agents under maintenance, and why a queued job waits

Revision ID: 5a0c3e7d2b91
Revises: 3c1e7a52d9b4
Create Date: 2026-11-28 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a0c3e7d2b91"
down_revision: str | None = "3c1e7a52d9b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_maintenance",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_maintenance")),
    )
    op.add_column("jobs", sa.Column("status_reason", sa.String(length=600), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "status_reason")
    op.drop_table("agent_maintenance")
