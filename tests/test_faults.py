"""PostgreSQL or Redis down: 503 in each surface's shape, and recovery without a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.app import create_app
from backplane.core.config import DatabaseSettings, RedisSettings, Settings
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.auth import PASSWORD, Api
from tests.fixtures.net import free_port
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.waiting import until


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


async def test_an_acquire_while_postgresql_is_down_is_503_gives_its_seat_back_and_works_once_it_is_up(
    proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy, api: Api
) -> None:
    """An acquire writes its history row before answering: with PostgreSQL away that write fails
    (its connections broken, new ones refused), so the answer is 503 and the seat is free again.
    Once PostgreSQL is back the history writer's dead connections are replaced: the next acquire works."""
    account = await api.register("acquire-faults@example.com")
    license_ = await api.issue_license(account, seats=1)
    url = "/api/v1/licenses/acquire/"
    first = {"license_key": license_["key_string"], "hardware_id": "machine-1"}
    acquired = await proxied_client.post(url, json=first, headers=account.headers)  # the writer's pool is warm
    assert acquired.status_code == 200, acquired.text
    released = await proxied_client.delete(
        f"/api/v1/licenses/sessions/{acquired.json()['session_id']}/", headers=account.headers
    )
    assert released.status_code == 200, released.text

    await pg_proxy.stop()
    refused = await proxied_client.post(url, json={**first, "hardware_id": "machine-2"}, headers=account.headers)
    assert refused.status_code == 503, refused.text
    assert refused.json() == {
        "error": "Service unavailable",
        "detail": "A backing service is unavailable. Retry later.",
    }

    await pg_proxy.start()
    # The one seat was given back: another machine gets it.
    again = await proxied_client.post(url, json={**first, "hardware_id": "machine-3"}, headers=account.headers)
    assert again.status_code == 200, again.text


async def test_redis_down_is_503_and_recovers(
    proxied_client: httpx.AsyncClient, redis_proxy: TcpProxy, api: Api
) -> None:
    account = await api.register("redis-faults@example.com")
    assert (await proxied_client.get("/v1/users/me", headers=account.headers)).status_code == 200
    license_ = await api.issue_license(account, seats=1)
    seat = {"license_key": license_["key_string"], "hardware_id": "machine-1"}
    acquired = await proxied_client.post("/api/v1/licenses/acquire/", json=seat, headers=account.headers)
    assert acquired.status_code == 200, acquired.text
    beat_url = f"/api/v1/licenses/sessions/{acquired.json()['session_id']}/heartbeat/"

    await redis_proxy.stop()

    # The seat routes (answered by the seat fast path, SEAT_FAST_PATH's default) say 503 in the licensing
    # shape too, not 500.
    heartbeat = await proxied_client.patch(beat_url, headers=account.headers)
    assert heartbeat.status_code == 503, heartbeat.text
    assert heartbeat.json()["error"] == "Service unavailable"

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
    # The lease was kept by Redis: the same session heartbeats again once Redis is back.
    again = await proxied_client.patch(beat_url, headers=account.headers)
    assert again.status_code == 200, again.text


async def test_a_redis_that_stops_answering_is_503_at_the_seat_routes_within_its_timeout(
    proxied_client: httpx.AsyncClient, redis_proxy: TcpProxy, api: Api
) -> None:
    """The seat scripts go through a client without a time-out on each read (`app.py`): a Redis that
    holds its replies still gets the seat routes a 503 within REDIS_TIMEOUT_SECONDS (1 s here), and
    the replies it sends late never answer a later request."""
    account = await api.register("redis-hangs@example.com")
    license_ = await api.issue_license(account, seats=2)
    seat = {"license_key": license_["key_string"], "hardware_id": "machine-1"}
    acquired = await proxied_client.post("/api/v1/licenses/acquire/", json=seat, headers=account.headers)
    assert acquired.status_code == 200, acquired.text
    session_id = acquired.json()["session_id"]
    beat_url = f"/api/v1/licenses/sessions/{session_id}/heartbeat/"
    assert (await proxied_client.patch(beat_url, headers=account.headers)).status_code == 200

    redis_proxy.hold()
    try:
        held = await asyncio.wait_for(proxied_client.patch(beat_url, headers=account.headers), timeout=10)
    finally:
        redis_proxy.flow()
    assert held.status_code == 503, held.text
    assert held.json()["error"] == "Service unavailable"

    other = await proxied_client.post(
        "/api/v1/licenses/acquire/", json={**seat, "hardware_id": "machine-2"}, headers=account.headers
    )
    assert other.status_code == 200, other.text
    assert other.json()["session_id"] != session_id
    again = await proxied_client.patch(beat_url, headers=account.headers)
    assert again.status_code == 200, again.text
    assert again.json()["session_id"] == session_id


async def test_a_job_stream_outlives_redis_and_ends_from_postgresql(settings: Settings, redis_proxy: TcpProxy) -> None:
    """Redis gone while a client watches a job: the stream stays open, and the job's end (read from
    PostgreSQL at the next poll) still reaches it, with its final `done` event."""
    redis_db = TEST_REDIS_URL.rsplit("/", 1)[-1]
    proxied = settings.model_copy(
        update={
            "agent_test_mode": True,
            "redis": RedisSettings(url=f"redis://127.0.0.1:{redis_proxy.port}/{redis_db}", timeout_seconds=1),
        }
    )
    app = create_app(proxied)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await until(started)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            account = await Api(http).register("stream-faults@example.com")
            created = await http.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=account.headers)
            assert created.status_code == 201, created.text
            job_id = created.json()["id"]
            seen: list[tuple[str, str]] = []
            async with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=account.headers) as response:
                assert response.status_code == 200
                lines = response.aiter_lines()
                event = ""
                async for line in lines:
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        seen.append((event, json.loads(line.removeprefix("data:"))["to_status"]))
                        if seen[-1] == ("status", "queued"):
                            break
                await redis_proxy.stop()
                # The job ends while Redis is away (a cancel written straight to PostgreSQL).
                engine = create_async_engine(settings.database.url)
                async with engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = :id"), {"id": job_id}
                    )
                    await connection.execute(
                        text(
                            "INSERT INTO job_transitions (job_id, from_status, to_status, attempt, reason, at) "
                            "VALUES (:id, 'queued', 'cancelled', 0, 'cancelled by the test', now())"
                        ),
                        {"id": job_id},
                    )
                await engine.dispose()
                async for line in lines:
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data = json.loads(line.removeprefix("data:"))
                        seen.append((event, data.get("to_status") or data["status"]))
            assert seen[-2:] == [("status", "cancelled"), ("done", "cancelled")]
    finally:
        await redis_proxy.start()
        server.should_exit = True
        await serving


async def test_a_warm_api_key_heartbeats_while_postgresql_is_down_and_a_cold_one_is_503(
    proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy, api: Api
) -> None:
    """An API key admitted from Redis (its second request on) keeps its seat alive through a PostgreSQL
    outage, as a signed-in user does; a key the process has not checked yet meets the outage: 503."""
    account = await api.register("key-faults@example.com")
    license_ = await api.issue_license(account, seats=2)
    warm, cold = await account.create_key(), await account.create_key()
    headers = {"Authorization": f"Bearer {warm['key']}"}
    body = {"license_key": license_["key_string"], "hardware_id": "ci-runner"}
    acquired = await proxied_client.post("/api/v1/licenses/acquire/", json=body, headers=headers)
    assert acquired.status_code == 200, acquired.text
    beat_url = f"/api/v1/licenses/sessions/{acquired.json()['session_id']}/heartbeat/"
    assert (await proxied_client.patch(beat_url, headers=headers)).status_code == 200  # the key's entry filled

    await pg_proxy.stop()
    beat = await proxied_client.patch(beat_url, headers=headers)
    assert beat.status_code == 200, beat.text
    refused = await proxied_client.patch(beat_url, headers={"Authorization": f"Bearer {cold['key']}"})
    assert refused.status_code == 503, refused.text
    assert refused.json() == {
        "error": "Service unavailable",
        "detail": "A backing service is unavailable. Retry later.",
    }

    await pg_proxy.start()
    assert (await proxied_client.patch(beat_url, headers=headers)).status_code == 200
