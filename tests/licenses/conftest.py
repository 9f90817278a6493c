from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.auth import Account, Api


async def create_license(account: Account, **body: Any) -> dict[str, Any]:
    """A live license of `account`'s organization, issued by platform staff."""
    assert account.api is not None
    return await account.api.issue_license(account, **body)


async def acquire(account: Account, key: str, hardware_id: str = "machine-1", **extra: Any) -> httpx.Response:
    body = {"license_key": key, "hardware_id": hardware_id, "ip_address": "192.168.1.100", "client_version": "1.0.0"}
    return await account.client.post("/api/v1/licenses/acquire/", json={**body, **extra}, headers=account.headers)


@pytest.fixture
def sql(settings: Settings):  # type: ignore[no-untyped-def]
    """Run SQL on the test database, for states no endpoint creates (e.g. a past expiry date)."""

    async def _run(statement: str, **params: Any) -> list[Any]:
        engine = create_async_engine(settings.database.url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return _run


@pytest.fixture
async def owner(api: Api) -> Account:
    return await api.register("owner@example.com", company="Licensor")


@pytest.fixture
async def short_lease_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"seat_lease_ttl_seconds": 1}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def short_lease_client(short_lease_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=short_lease_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
