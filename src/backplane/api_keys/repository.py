from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.api_keys.models import ApiKey
from backplane.auth.models import User
from backplane.core.tenancy import TenantRepository
from backplane.organizations.models import Organization


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey


async def find_key_for_authentication(
    session: AsyncSession, key_hash: str
) -> tuple[ApiKey, Organization, User | None] | None:
    """Authentication is the one lookup that starts from the secret, before any organization is known.

    One query on every API-key request: the key, its organization and the user who created it.
    """
    stmt = (
        select(ApiKey, Organization, User)
        .join(Organization, Organization.id == ApiKey.organization_id)
        .outerjoin(User, User.id == ApiKey.created_by_id)
        .where(ApiKey.key_hash == key_hash)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2]) if row else None


async def touch_last_used(session: AsyncSession, api_key: ApiKey, now: datetime) -> None:
    """Record use, never waiting: the row lock lasts as long as the request's transaction (a long
    upload), so a concurrent request with the same key skips the write instead of queueing behind it."""
    unlocked = select(ApiKey.id).where(ApiKey.id == api_key.id).with_for_update(skip_locked=True).scalar_subquery()
    await session.execute(update(ApiKey).where(ApiKey.id == unlocked).values(last_used_at=now))
    api_key.last_used_at = now
