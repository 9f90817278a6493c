from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import EmailToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        stmt = select(User).where(User.email == email.lower())
        return (await self.session.execute(stmt)).scalar_one_or_none()

    def add(self, user: User) -> User:
        self.session.add(user)
        return user


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
