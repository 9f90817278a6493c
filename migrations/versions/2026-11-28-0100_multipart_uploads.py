"""resumable multipart uploads: one row per upload, beside its pending file; the parts live in the storage

Revision ID: 7c2d9e4f1a63
Revises: 6c2d4f8a1e30
Create Date: 2026-11-28 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2d9e4f1a63"
down_revision: str | None = "6c2d4f8a1e30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=16), nullable=True),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("part_count", sa.Integer(), nullable=False),
        sa.Column("storage_upload_id", sa.String(length=1024), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_uploads_file_id_files"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_uploads_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_file_id"), "uploads", ["file_id"], unique=False)
    op.create_index("ix_uploads_status_expires_at", "uploads", ["status", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_uploads_status_expires_at", table_name="uploads")
    op.drop_index(op.f("ix_uploads_file_id"), table_name="uploads")
    op.drop_table("uploads")
