from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backplane.core.config import Settings
from backplane.staff import commands


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Here organizations get the free license, as by default."""
    return settings.model_copy(update={"free_license_seats": 1})


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database.url)
    yield engine
    await engine.dispose()


@pytest.fixture
def query(db: AsyncEngine) -> Callable[..., Awaitable[list[Any]]]:
    async def _query(sql: str, **params: Any) -> list[Any]:
        async with db.begin() as connection:
            result = await connection.execute(text(sql), params)
            return list(result) if result.returns_rows else []

    return _query


@pytest.fixture
def make_staff(settings: Settings) -> Callable[[str], Awaitable[str]]:
    """`backplane staff grant EMAIL`, through the command's own code."""

    async def _grant(email: str) -> str:
        return await commands.set_staff(settings, email, True)

    return _grant
