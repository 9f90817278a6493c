"""PostgreSQL or Redis down: 503 in each surface's shape, and recovery without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from backplane.app import create_app
from backplane.core.config import DatabaseSettings, RedisSettings, Settings
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.auth import PASSWORD, Api
from tests.fixtures.proxy import TcpProxy


@pytest.fixture
async def proxied_client(
    settings: Settings, pg_proxy: TcpProxy, redis_proxy: TcpProxy
) -> AsyncIterator[httpx.AsyncClient]:
    db_url = make_url(settings.database.url).set(port=pg_proxy.port).render_as_string(hide_password=False)
    redis_db = TEST_REDIS_URL.rsplit("/", 1)[-1]
    proxied = settings.model_copy(
        update={
            "database": DatabaseSettings(url=db_url, pool_size=2, connect_timeout_seconds=1),
            "redis": RedisSettings(url=f"redis://127.0.0.1:{redis_proxy.port}/{redis_db}", timeout_seconds=1),
        }
    )
    app = create_app(proxied)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_database_down_is_503_in_both_shapes_and_recovers(
    proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy
) -> None:
    account = await Api(proxied_client).register("faults@example.com")
    login = {"email": account.email, "password": PASSWORD}
    assert (await proxied_client.post("/v1/auth/login", json=login)).status_code == 200

    await pg_proxy.stop()

    platform = await proxied_client.post("/v1/auth/login", json=login)
    assert platform.status_code == 503
    assert platform.json() == {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": "A backing service is unavailable. Retry later.",
            "details": {},
            "request_id": platform.headers["X-Request-ID"],
        }
    }
    licensing = await proxied_client.post("/api/v1/auth/token/", json=login)
    assert licensing.status_code == 503
    assert licensing.json() == {
        "error": "Service unavailable",
        "detail": "A backing service is unavailable. Retry later.",
    }

    ready = await proxied_client.get("/v1/health")
    assert ready.status_code == 503
    assert ready.json()["error"]["details"] == {"checks": {"database": "unavailable", "redis": "ok"}}
    ready = await proxied_client.get("/api/v1/health/ready/")
    assert ready.status_code == 503
    assert ready.json() == {"error": "Service unavailable", "detail": "Unavailable: database."}
    # Liveness does not depend on the backing services.
    assert (await proxied_client.get("/api/v1/health/")).status_code == 200

    await pg_proxy.start()

    assert (await proxied_client.post("/v1/auth/login", json=login)).status_code == 200
    assert (await proxied_client.get("/v1/health")).json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok"},
    }


async def test_redis_down_is_503_and_recovers(proxied_client: httpx.AsyncClient, redis_proxy: TcpProxy) -> None:
    account = await Api(proxied_client).register("redis-faults@example.com")
    assert (await proxied_client.get("/v1/users/me", headers=account.headers)).status_code == 200

    await redis_proxy.stop()

    # Checking a JWT's revocation needs Redis: the answer is 503, not 401 and not 500.
    me = await proxied_client.get("/v1/users/me", headers=account.headers)
    assert me.status_code == 503
    assert me.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    ready = await proxied_client.get("/api/v1/health/ready/")
    assert ready.status_code == 503
    assert ready.json() == {"error": "Service unavailable", "detail": "Unavailable: redis."}

    await redis_proxy.start()

    assert (await proxied_client.get("/v1/users/me", headers=account.headers)).status_code == 200
    assert (await proxied_client.get("/api/v1/health/ready/")).status_code == 200
