"""Fixtures for the auth tests: direct database access and a protected licensing-surface route."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backplane.access.requirements import Authenticated
from backplane.core.config import Settings

LICENSING_PROBE = "/api/v1/auth-tests/whoami/"


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database, for changes no endpoint makes (expiring a key, deleting a user)."""
    engine = create_async_engine(settings.database.url)
    yield engine
    await engine.dispose()


@pytest.fixture
def execute(db: AsyncEngine):  # type: ignore[no-untyped-def]
    async def _execute(sql: str, **params: Any) -> int:
        async with db.begin() as connection:
            result = await connection.execute(text(sql), params)
        return result.rowcount

    return _execute


@pytest.fixture
def licensing_probe(app: FastAPI) -> str:
    """A protected `/api/v1/...` route guarded by the real authentication dependency.

    No licensing-surface resource route exists in this service yet, so this is how the tests see
    how a rejected credential is rendered on that surface (`{"error", "detail"}`).
    """

    async def whoami(principal: Authenticated) -> dict[str, Any]:
        return {
            "user_id": str(principal.user.id) if principal.user else None,
            "organization_id": str(principal.organization.id) if principal.organization else None,
            "api_key": principal.api_key is not None,
        }

    app.add_api_route(LICENSING_PROBE, whoami, methods=["GET"])
    return LICENSING_PROBE
