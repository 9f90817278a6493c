from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, IdMixin, TimestampMixin


class StaffAction(IdMixin, TimestampMixin, Base):
    """One thing platform staff did (who, what, when), kept for good; readable by staff."""

    __tablename__ = "staff_actions"
    __table_args__ = (Index("ix_staff_actions_created_at", "created_at"),)

    # The staff user; None for the operator's shell (`backplane licenses issue`), named in `actor`.
    staff_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))  # the staff user's email, or `cli:<os user>`
    action: Mapped[str] = mapped_column(String(64))  # e.g. `license.create`, `staff.grant`
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id", ondelete="SET NULL"))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
