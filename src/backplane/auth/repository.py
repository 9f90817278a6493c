from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import EmailToken, OAuthIdentity, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        stmt = select(User).where(User.email == email.lower())
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user, row-locked until the transaction ends (serialises changes to their credentials)."""
        stmt = select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, user: User) -> User:
        self.session.add(user)
        return user


class IdentityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_subject(self, provider: str, subject: str) -> OAuthIdentity | None:
        stmt = select(OAuthIdentity).where(OAuthIdentity.provider == provider, OAuthIdentity.subject == subject)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_user(self, user_id: uuid.UUID, identity_id: uuid.UUID) -> OAuthIdentity | None:
        stmt = select(OAuthIdentity).where(OAuthIdentity.id == identity_id, OAuthIdentity.user_id == user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_for_user(self, user_id: uuid.UUID) -> list[OAuthIdentity]:
        stmt = (
            select(OAuthIdentity)
            .where(OAuthIdentity.user_id == user_id)
            .order_by(OAuthIdentity.created_at, OAuthIdentity.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def count_for_user(self, user_id: uuid.UUID) -> int:
        stmt = select(func.count()).select_from(OAuthIdentity).where(OAuthIdentity.user_id == user_id)
        return int((await self.session.execute(stmt)).scalar_one())

    def add(self, identity: OAuthIdentity) -> OAuthIdentity:
        self.session.add(identity)
        return identity

    async def delete(self, identity: OAuthIdentity) -> None:
        await self.session.delete(identity)


class EmailTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, token: EmailToken) -> EmailToken:
        self.session.add(token)
        return token

    async def get_by_hash_for_update(self, token_hash: str, purpose: str) -> EmailToken | None:
        stmt = (
            select(EmailToken)
            .where(EmailToken.token_hash == token_hash, EmailToken.purpose == purpose)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def use_all_for_user(self, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
        stmt = (
            update(EmailToken)
            .where(
                EmailToken.user_id == user_id,
                EmailToken.purpose == purpose,
                EmailToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
        await self.session.execute(stmt)
