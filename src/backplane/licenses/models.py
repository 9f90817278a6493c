from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, IdMixin, TimestampMixin, utcnow


class Tier(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


class License(IdMixin, TimestampMixin, Base):
    __tablename__ = "licenses"
    __table_args__ = (
        CheckConstraint("seats > 0", name="seats_positive"),
        Index("ix_licenses_organization_id_created_at", "organization_id", "created_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    key_string: Mapped[str] = mapped_column(String(64), unique=True)
    tier: Mapped[str] = mapped_column(String(32))
    seats: Mapped[int]
    # is_active=false: turned off (e.g. its subscription ended). suspended_at: paused by an admin.
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    suspended_at: Mapped[datetime | None]
    expiry_date: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict, server_default="{}")
    livemode: Mapped[bool] = mapped_column(default=True, server_default="true")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)

    def expired(self, now: datetime) -> bool:
        return self.expiry_date is not None and self.expiry_date <= now


class SessionEnd(StrEnum):
    released = "released"
    expired = "expired"
    revoked = "revoked"


class LicenseSession(TimestampMixin, Base):
    """History of one leased seat. The live lease itself is in Redis (`licenses/leases.py`)."""

    __tablename__ = "license_sessions"
    __table_args__ = (Index("ix_license_sessions_license_id_ended_at", "license_id", "ended_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    license_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"))
    hardware_id: Mapped[str] = mapped_column(String(128))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    client_version: Mapped[str | None] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(default=True, server_default="true")  # its license's mode
    acquired_at: Mapped[datetime]
    last_heartbeat_at: Mapped[datetime | None]
    heartbeats: Mapped[int] = mapped_column(default=0, server_default="0")
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(16))


class LicenseNotice(Base):
    """That `license.expiring` (7 or 1 days before) or `license.expired` was recorded for a license's
    expiry date: the daily cron inserts it first and records the event only if the insert was new, so
    each fires once per license and expiry date (a new expiry date gets its own notices)."""

    __tablename__ = "license_notices"

    license_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # expiring_7d, expiring_1d, expired
    expiry_date: Mapped[datetime] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
