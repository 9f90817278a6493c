"""ix_jobs_waiting in the exact order jobs are taken (priority DESC, created_at, id): the finishing run's
hand-over and the dispatcher read the first waiting job off the index instead of sorting the whole queue

Built CONCURRENTLY under a new name, then swapped in, so a deploy does not block job writes while
the index builds on a large table.

Revision ID: 0a7c2e9d4b16
Revises: 9e4f1a6b3c85
Create Date: 2026-11-29 01:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0a7c2e9d4b16"
down_revision: str | None = "9e4f1a6b3c85"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = "WHERE status = 'queued' AND dispatch_token IS NULL"


def _swap(columns: str) -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_jobs_waiting_next")  # left by an interrupted run
        op.execute(f"CREATE INDEX CONCURRENTLY ix_jobs_waiting_next ON jobs ({columns}) {WHERE}")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_jobs_waiting")
        op.execute("ALTER INDEX ix_jobs_waiting_next RENAME TO ix_jobs_waiting")


def upgrade() -> None:
    _swap("organization_id, priority DESC, created_at, id")


def downgrade() -> None:
    _swap("organization_id, priority DESC, created_at")
