from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, IdMixin, TimestampMixin

LIVE_PREFIX = "coexai_live_"
TEST_PREFIX = "coexai_test_"


def is_api_key(token: str) -> bool:
    return token.startswith((LIVE_PREFIX, TEST_PREFIX))


class RevokedReason:
    """Why a key stopped working: revoked by an admin, or taken along by its creator."""

    revoked = "revoked"
    creator_left = "creator_left"  # left or was removed from the organization
    creator_deactivated = "creator_deactivated"


class ApiKey(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_keys"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))
    # `coexai_live_` / `coexai_test_` plus the first 8 characters of the secret part, for display.
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    livemode: Mapped[bool]
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    allowed_ips: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"
