"""trace context of jobs, events and webhook deliveries

A W3C trace-context carrier (`{"traceparent": ...}`) kept with the row, so that work done later by
another process (a job's run, an event's deliveries and their retries) continues the trace that
asked for it. NULL unless OTEL_EXPORTER_OTLP_ENDPOINT is set; nullable columns without a default, so
adding them rewrites no table.

Revision ID: 7a3f0c2e9d41
Revises: 5b8f0c2a7e41
Create Date: 2026-11-28 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7a3f0c2e9d41"
down_revision: str | None = "5b8f0c2a7e41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("jobs", "events", "webhook_deliveries")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "trace_context")
