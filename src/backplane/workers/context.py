from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core.db import commit


@asynccontextmanager
async def session_scope(ctx: dict[str, Any]) -> AsyncIterator[AsyncSession]:
    """One unit of work for a task: commit on success, roll back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await commit(session)
