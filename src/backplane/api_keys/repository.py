from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from backplane.api_keys.models import ApiKey
from backplane.auth.models import User
from backplane.core.tenancy import TenantRepository
from backplane.organizations.models import Membership, Organization


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey


async def find_key_for_authentication(
    session: AsyncSession, key_hash: str
) -> tuple[ApiKey, Organization, User | None, Membership | None] | None:
    """Authentication is the one lookup that starts from the secret, before any organization is known.

    One query on every API-key request: the key, its organization, the user who created it and that
    user's membership in the organization today (a key acts within its creator's current role).
    """
    stmt = (
        select(ApiKey, Organization, User, Membership)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .outerjoin(User, User.id == ApiKey.created_by_id)
        .outerjoin(
            Membership,
            and_(Membership.user_id == ApiKey.created_by_id, Membership.organization_id == ApiKey.organization_id),
        )
        .where(ApiKey.key_hash == key_hash)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2], row[3]) if row else None


async def revoke_created_by(
    session: AsyncSession, user_id: uuid.UUID, reason: str, now: datetime, organization_id: uuid.UUID | None = None
) -> int:
    """Revoke every live key `user_id` created (in one organization, or in all); how many."""
    stmt = update(ApiKey).where(ApiKey.created_by_id == user_id, ApiKey.revoked_at.is_(None))
    if organization_id is not None:
        stmt = stmt.where(ApiKey.organization_id == organization_id)
    result = await session.execute(stmt.values(revoked_at=now, revoked_reason=reason))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def touch_last_used(session: AsyncSession, api_key: ApiKey, now: datetime) -> None:
    """Record use, never waiting: the row lock lasts as long as the request's transaction (a long
    upload), so a concurrent request with the same key skips the write instead of queueing behind it."""
    unlocked = select(ApiKey.id).where(ApiKey.id == api_key.id).with_for_update(skip_locked=True).scalar_subquery()
    await session.execute(update(ApiKey).where(ApiKey.id == unlocked).values(last_used_at=now))
    # What the row now holds, not a change to flush: a dirty key would look revoked or edited to the
    # caller cache's flush hook (`access/callers.py`), which would empty its creator's entries.
    set_committed_value(api_key, "last_used_at", now)
