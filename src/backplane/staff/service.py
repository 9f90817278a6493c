"""Platform staff: who they are, and the record of everything they do (who, what, when)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import User
from backplane.staff.models import StaffAction
from backplane.staff.repository import StaffActionRepository


def actor_of(user: User | None, cli_user: str | None = None) -> tuple[uuid.UUID | None, str]:
    """(staff user id, how the actor is named): a staff user, or the operator's shell."""
    if user is not None:
        return user.id, user.email
    return None, f"cli:{cli_user or 'unknown'}"


def record(
    session: AsyncSession,
    actor: tuple[uuid.UUID | None, str],
    action: str,
    *,
    organization_id: uuid.UUID | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> StaffAction:
    staff_user_id, name = actor
    return StaffActionRepository(session).add(
        StaffAction(
            id=uuid.uuid4(),
            staff_user_id=staff_user_id,
            actor=name,
            action=action,
            organization_id=organization_id,
            target_id=target_id,
            details=details or {},
        )
    )
