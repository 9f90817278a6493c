"""Seats across a Redis that lost its data: leases rebuilt from PostgreSQL's open sessions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from backplane.licenses import recovery
from backplane.licenses.tasks import record_ended_sessions_task
from backplane.workers.settings import shutdown, startup
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account
from tests.licenses.conftest import acquire, create_license

RESTORING = "Seat leases are being restored after a Redis restart. Retry in a few seconds."


async def _lose_redis() -> None:
    """Redis restarted without persistence: every key gone."""
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()


async def _record_ended(app: FastAPI) -> int:
    ctx: dict[str, Any] = {"settings": app.state.settings}
    await startup(ctx)
    try:
        return await record_ended_sessions_task(ctx)
    finally:
        await shutdown(ctx)


async def test_live_sessions_keep_their_ids_and_seats_after_redis_lost_them(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, sql
) -> None:  # type: ignore[no-untyped-def]
    license_ = await create_license(owner, seats=2)
    first = (await acquire(owner, license_["key_string"], "machine-a")).json()
    second = (await acquire(owner, license_["key_string"], "machine-b")).json()

    await _lose_redis()

    beat = await client.patch(f"/api/v1/licenses/sessions/{first['session_id']}/heartbeat/", headers=owner.headers)
    assert beat.status_code == 200, beat.text
    assert beat.json()["session_id"] == first["session_id"]
    assert beat.json()["seats_remaining"] == 0  # machine-b still holds its seat
    full = await acquire(owner, license_["key_string"], "machine-c")
    assert_licensing_error(full, 409, "Conflict", "No seats available: all 2 seats of this license are in use.")
    again = await acquire(owner, license_["key_string"], "machine-b")  # the same machine: its own session
    assert again.json()["session_id"] == second["session_id"]
    live = await client.get(f"/api/v1/licenses/{license_['id']}/sessions/", headers=owner.headers)
    assert sorted(s["session_id"] for s in live.json()["sessions"]) == sorted(
        [first["session_id"], second["session_id"]]
    )

    released = await client.delete(f"/api/v1/licenses/sessions/{second['session_id']}/", headers=owner.headers)
    assert released.json() == {"message": "Seat released.", "seats_remaining": 1}
    assert await _record_ended(app) == 1
    rows = await sql("SELECT hardware_id, end_reason FROM license_sessions ORDER BY hardware_id")
    assert rows == [("machine-a", None), ("machine-b", "released")]  # no history row lost


async def test_sessions_that_no_longer_fit_end_in_history(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, sql
) -> None:  # type: ignore[no-untyped-def]
    license_ = await create_license(owner, seats=2)
    older = (await acquire(owner, license_["key_string"], "machine-a")).json()
    newer = (await acquire(owner, license_["key_string"], "machine-b")).json()
    await sql("UPDATE licenses SET seats = 1 WHERE id = :id", id=license_["id"])  # seats cut meanwhile

    await _lose_redis()

    kept = await client.patch(f"/api/v1/licenses/sessions/{newer['session_id']}/heartbeat/", headers=owner.headers)
    assert kept.status_code == 200, kept.text
    gone = await client.patch(f"/api/v1/licenses/sessions/{older['session_id']}/heartbeat/", headers=owner.headers)
    assert_licensing_error(gone, 404, "Not found", "Session not found or expired. Acquire a seat again.")
    assert await _record_ended(app) == 1
    rows = await sql("SELECT hardware_id, end_reason FROM license_sessions ORDER BY hardware_id")
    assert rows == [("machine-a", "expired"), ("machine-b", None)]


async def test_a_seat_request_during_another_process_restore_is_told_to_retry(
    owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    license_ = await create_license(owner, seats=1)
    await _lose_redis()
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.set(recovery.LOCK, "another-process", px=10_000)  # a restore under way elsewhere
    monkeypatch.setattr(recovery, "WAIT_SECONDS", 0.3)

    response = await acquire(owner, license_["key_string"], "machine-a")

    assert_licensing_error(response, 503, "Service unavailable", RESTORING)
    assert response.headers["Retry-After"] == "2"
    await redis.delete(recovery.LOCK)
    await redis.aclose()
    assert (await acquire(owner, license_["key_string"], "machine-a")).status_code == 200


async def test_a_batch_of_ended_leases_is_written_in_one_update_with_an_event_each(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, sql
) -> None:  # type: ignore[no-untyped-def]
    """Ending leases after many expired at once (thousands, after a load test) took a statement each."""
    license_ = await create_license(owner, seats=3)
    ids = [(await acquire(owner, license_["key_string"], f"machine-{n}")).json()["session_id"] for n in range(3)]
    for session_id in ids:
        released = await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=owner.headers)
        assert released.status_code == 200, released.text
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        assert await _record_ended(app) == 3
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert len([s for s in seen if "UPDATE license_sessions" in s]) == 1
    ended = await sql("SELECT end_reason, count(*) FROM license_sessions WHERE ended_at IS NOT NULL GROUP BY 1")
    assert ended == [("released", 3)]
    announced = await sql("SELECT data->>'session_id' FROM events WHERE type = 'seat.released' ORDER BY created_at, id")
    assert sorted(row[0] for row in announced) == sorted(ids)
