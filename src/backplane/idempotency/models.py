from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base


class IdempotencyKey(Base):
    """The first response to a platform POST made with `Idempotency-Key`, kept 24 hours per caller.

    `response_body` is encrypted (`core.crypto`): a response may carry a secret shown once."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    livemode: Mapped[bool] = mapped_column(primary_key=True)  # a test key never replays a live response
    caller: Mapped[str] = mapped_column(String(64), primary_key=True)  # `key:<id>` or `user:<id>`
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    locked_until: Mapped[datetime | None]  # set while the first request is in flight
    response_status: Mapped[int | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime]
