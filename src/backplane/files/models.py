from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, TimestampMixin, utcnow


class File(TimestampMixin, Base):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_organization_id_created_at", "organization_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # file_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(default=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # ready: stored and usable. pending: a pre-signed upload not yet confirmed.
    status: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    storage_key: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime | None]  # pending uploads only
    declared_size_bytes: Mapped[int | None] = mapped_column(BigInteger)  # pre-signed uploads: what confirm checks
    uploaded_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)


class Upload(TimestampMixin, Base):
    """A multipart upload (files/uploads.py) of the pending file `file_id`; its parts live in the storage."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status_expires_at", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # upl_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(default=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(16))
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int]
    storage_upload_id: Mapped[str | None] = mapped_column(String(1024))  # S3's UploadId
    # uploading: takes parts. completed: the file is ready (the row stays, so that GET answers).
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
