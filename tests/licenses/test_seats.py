"""Seats leased through Redis: acquire, heartbeat, release, expiry, and the seat limit under load."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from backplane.core import keys
from backplane.licenses.leases import RESTORE_STEP, SWEEP_STEP, Leases, OpenSession
from backplane.licenses.tasks import record_ended_sessions_task
from backplane.workers.settings import shutdown, startup
from tests.fixtures.assertions import assert_licensing_error, assert_licensing_fields
from tests.fixtures.auth import Account, Api
from tests.licenses.conftest import acquire, create_license

SESSION_GONE = "Session not found or expired. Acquire a seat again."


async def test_acquire_heartbeat_release(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner, seats=2)
    response = await acquire(owner, license_["key_string"])
    assert response.status_code == 200, response.text
    session = response.json()
    assert set(session) == {"session_id", "license_key", "expires_at", "is_active", "seats_remaining"}
    assert session["license_key"] == license_["key_string"]
    assert session["is_active"] is True and session["seats_remaining"] == 1

    beat = await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=owner.headers)
    assert beat.status_code == 200
    assert beat.json()["session_id"] == session["session_id"]
    assert beat.json()["expires_at"] >= session["expires_at"]

    released = await client.delete(f"/api/v1/licenses/sessions/{session['session_id']}/", headers=owner.headers)
    assert released.json() == {"message": "Seat released.", "seats_remaining": 2}
    again = await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=owner.headers)
    assert_licensing_error(again, 404, "Not found", SESSION_GONE)
    twice = await client.delete(f"/api/v1/licenses/sessions/{session['session_id']}/", headers=owner.headers)
    assert_licensing_error(twice, 404, "Not found", SESSION_GONE)


async def test_the_same_machine_gets_its_session_back(owner: Account) -> None:
    license_ = await create_license(owner, seats=1)
    first = (await acquire(owner, license_["key_string"], "machine-a")).json()
    second = (await acquire(owner, license_["key_string"], "machine-a")).json()
    assert second["session_id"] == first["session_id"]
    assert second["seats_remaining"] == 0
    other = await acquire(owner, license_["key_string"], "machine-b")
    assert_licensing_error(other, 409, "Conflict", "No seats available: all 1 seats of this license are in use.")
    assert "seats" in other.json()["detail"].lower()  # what the guide's client checks


async def test_never_more_live_sessions_than_seats_under_200_concurrent_acquires(
    owner: Account, client: httpx.AsyncClient
) -> None:
    license_ = await create_license(owner, seats=5)
    responses = await asyncio.gather(*(acquire(owner, license_["key_string"], f"hw-{i}") for i in range(200)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 5
    assert statuses.count(409) == 195
    sessions = (await client.get(f"/api/v1/licenses/{license_['id']}/sessions/", headers=owner.headers)).json()
    assert sessions["count"] == 5 and sessions["seats"] == 5
    assert {s["session_id"] for s in sessions["sessions"]} == {
        r.json()["session_id"] for r in responses if r.status_code == 200
    }


async def test_an_unheartbeated_lease_frees_its_seat_and_is_recorded_as_expired(
    api: Api,
    short_lease_client: httpx.AsyncClient,
    short_lease_app: FastAPI,
    sql,  # type: ignore[no-untyped-def]
) -> None:
    state = short_lease_app.state
    owner = await Api(short_lease_client, state.queue, state.settings).register("short@example.com")
    license_ = await create_license(owner, seats=1)
    first = (await acquire(owner, license_["key_string"], "machine-a")).json()
    assert_licensing_error(
        await acquire(owner, license_["key_string"], "machine-b"),
        409,
        "Conflict",
        "No seats available: all 1 seats of this license are in use.",
    )

    await asyncio.sleep(1.3)

    beat = await short_lease_client.patch(
        f"/api/v1/licenses/sessions/{first['session_id']}/heartbeat/", headers=owner.headers
    )
    assert_licensing_error(beat, 404, "Not found", SESSION_GONE)
    assert (await acquire(owner, license_["key_string"], "machine-b")).status_code == 200

    ctx: dict[str, Any] = {"settings": short_lease_app.state.settings}
    await startup(ctx)
    try:
        assert await record_ended_sessions_task(ctx) == 1
    finally:
        await shutdown(ctx)
    rows = await sql(
        "SELECT end_reason, ended_at IS NOT NULL FROM license_sessions WHERE id = :id", id=first["session_id"]
    )
    assert rows == [("expired", True)]


async def test_release_and_revoke_are_recorded_in_history(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, sql
) -> None:  # type: ignore[no-untyped-def]
    license_ = await create_license(owner, seats=3)
    kept = (await acquire(owner, license_["key_string"], "a")).json()
    revoked = (await acquire(owner, license_["key_string"], "b")).json()
    await client.patch(f"/api/v1/licenses/sessions/{kept['session_id']}/heartbeat/", headers=owner.headers)
    await client.delete(f"/api/v1/licenses/sessions/{kept['session_id']}/", headers=owner.headers)
    response = await client.delete(
        f"/api/v1/licenses/{license_['id']}/sessions/{revoked['session_id']}/", headers=owner.headers
    )
    assert response.json() == {"message": "Session revoked; its seat is free.", "seats_remaining": 3}

    ctx: dict[str, Any] = {"settings": app.state.settings}
    await startup(ctx)
    try:
        assert await record_ended_sessions_task(ctx) == 2
        assert await record_ended_sessions_task(ctx) == 0  # acknowledged: written once
    finally:
        await shutdown(ctx)
    rows = await sql(
        "SELECT hardware_id, end_reason, heartbeats, ip_address FROM license_sessions ORDER BY hardware_id"
    )
    assert rows == [("a", "released", 1, "192.168.1.100"), ("b", "revoked", 0, "192.168.1.100")]


async def test_acquire_refuses_unusable_licenses_with_403(owner: Account, client: httpx.AsyncClient, sql) -> None:  # type: ignore[no-untyped-def]
    license_ = await create_license(owner)
    await client.patch(f"/api/v1/licenses/{license_['id']}/", json={"suspended": True}, headers=owner.headers)
    assert_licensing_error(
        await acquire(owner, license_["key_string"]),
        403,
        "Forbidden",
        "This license is suspended. Contact your administrator.",
    )
    await client.patch(f"/api/v1/licenses/{license_['id']}/", json={"suspended": False}, headers=owner.headers)
    await sql("UPDATE licenses SET is_active = false WHERE id = :id", id=license_["id"])  # its subscription ended
    assert_licensing_error(await acquire(owner, license_["key_string"]), 403, "Forbidden", "This license is inactive.")
    await sql("UPDATE licenses SET is_active = true WHERE id = :id", id=license_["id"])
    await sql("UPDATE licenses SET expiry_date = now() - interval '1 hour' WHERE id = :id", id=license_["id"])
    expired = await acquire(owner, license_["key_string"])
    assert expired.status_code == 403 and expired.json()["detail"].startswith("This license expired on ")


async def test_seat_bad_input(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner)
    key = license_["key_string"]
    assert_licensing_fields(
        await acquire(owner, "PROD-2025-ABCD-1234"), {"license_key": ["This is not a valid license key."]}
    )
    oversized = await acquire(owner, key, "x" * 129)
    assert list(oversized.json()["errors"]) == ["hardware_id"]
    assert list((await acquire(owner, key, "has space")).json()["errors"]) == ["hardware_id"]
    assert list((await acquire(owner, key, ip_address="999.1.1.1")).json()["errors"]) == ["ip_address"]
    missing = await client.post("/api/v1/licenses/acquire/", json={"license_key": key}, headers=owner.headers)
    assert_licensing_fields(missing, {"hardware_id": ["This field is required."]})
    unknown = await client.patch(f"/api/v1/licenses/sessions/{uuid.uuid4()}/heartbeat/", headers=owner.headers)
    assert_licensing_error(unknown, 404, "Not found", SESSION_GONE)
    malformed = await client.patch("/api/v1/licenses/sessions/nope/heartbeat/", headers=owner.headers)
    assert malformed.status_code == 404


async def test_another_organizations_license_and_sessions_are_404(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    license_ = await create_license(owner)
    session = (await acquire(owner, license_["key_string"])).json()
    stranger = await api.register("stranger@example.com")
    assert_licensing_error(await acquire(stranger, license_["key_string"]), 404, "Not found", "License not found.")
    for response in (
        await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=stranger.headers),
        await client.delete(f"/api/v1/licenses/sessions/{session['session_id']}/", headers=stranger.headers),
    ):
        assert_licensing_error(response, 404, "Not found", SESSION_GONE)
    # The owner's seat is untouched by the attempts.
    beat = await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=owner.headers)
    assert beat.status_code == 200


async def test_a_viewer_cannot_take_seats_and_a_member_cannot_revoke(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    license_ = await create_license(owner)
    viewer = await api.register("viewer@example.com")
    await api.add_member(owner, viewer, "viewer")
    member = await api.register("member@example.com")
    await api.add_member(owner, member, "member")
    response = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "v"},
        headers=viewer.in_org(owner.organization_id),
    )
    assert_licensing_error(
        response, 403, "Forbidden", "Your role 'viewer' does not allow this action; it requires 'member'."
    )
    session = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "m"},
        headers=member.in_org(owner.organization_id),
    )
    assert session.status_code == 200
    revoke = await client.delete(
        f"/api/v1/licenses/{license_['id']}/sessions/{session.json()['session_id']}/",
        headers=member.in_org(owner.organization_id),
    )
    assert_licensing_error(
        revoke, 403, "Forbidden", "Your role 'member' does not allow this action; it requires 'admin'."
    )


async def test_an_api_key_with_write_scope_can_take_seats(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner)
    key = await owner.create_key(scopes=["read", "write"])
    response = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "ci-runner"},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert response.status_code == 200, response.text


async def test_live_session_listing_is_bounded_and_counts_all(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner, seats=5)
    for i in range(4):
        assert (await acquire(owner, license_["key_string"], f"m{i}")).status_code == 200
    listed = await client.get(f"/api/v1/licenses/{license_['id']}/sessions/?limit=2", headers=owner.headers)
    assert listed.json()["count"] == 4 and len(listed.json()["sessions"]) == 2
    got = await client.get(f"/api/v1/licenses/{license_['id']}/", headers=owner.headers)
    assert got.json()["seats_in_use"] == 4
    too_many = await client.get(f"/api/v1/licenses/{license_['id']}/sessions/?limit=5000", headers=owner.headers)
    assert list(too_many.json()["errors"]) == ["limit"]


async def test_the_license_list_shows_each_licenses_live_seats(owner: Account, client: httpx.AsyncClient) -> None:
    busy, idle = await create_license(owner, seats=3), await create_license(owner, seats=2)
    for i in range(2):
        assert (await acquire(owner, busy["key_string"], f"m{i}")).status_code == 200
    listed = await client.get("/api/v1/licenses/", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    shown = {lic["id"]: lic["seats_in_use"] for lic in listed.json()["licenses"]}
    assert shown == {busy["id"]: 2, idle["id"]: 0}


async def test_heartbeat_on_a_suspended_license_is_refused(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner)
    session = (await acquire(owner, license_["key_string"])).json()
    await client.patch(f"/api/v1/licenses/{license_['id']}/", json={"suspended": True}, headers=owner.headers)
    beat = await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=owner.headers)
    assert_licensing_error(beat, 403, "Forbidden", "This license is suspended. Contact your administrator.")
    await client.patch(f"/api/v1/licenses/{license_['id']}/", json={"suspended": False}, headers=owner.headers)
    beat = await client.patch(f"/api/v1/licenses/sessions/{session['session_id']}/heartbeat/", headers=owner.headers)
    assert beat.status_code == 200


async def test_live_sessions_show_the_machines_ip_and_client_version(
    owner: Account,
    client: httpx.AsyncClient,
    sql,  # type: ignore[no-untyped-def]
) -> None:
    """What an admin needs to tell machines apart (the dashboard's sessions table): the IP address and
    client version each acquire reported, beside its hardware id and last heartbeat."""
    license_ = await create_license(owner, seats=2)
    first = (await acquire(owner, license_["key_string"], "machine-a")).json()
    second = (await acquire(owner, license_["key_string"], "machine-b", client_version="2.4.1")).json()
    stored = dict(
        (str(row[0]), (row[1], row[2]))
        for row in await sql("SELECT id, ip_address, client_version FROM license_sessions")
    )
    listed = (await client.get(f"/api/v1/licenses/{license_['id']}/sessions/", headers=owner.headers)).json()
    shown = {s["session_id"]: (s["hardware_id"], s["ip_address"], s["client_version"]) for s in listed["sessions"]}
    assert shown == {
        first["session_id"]: ("machine-a", *stored[first["session_id"]]),
        second["session_id"]: ("machine-b", *stored[second["session_id"]]),
    }
    assert shown[second["session_id"]][2] == "2.4.1"


async def _expired_fleet(redis: Any, license_: dict[str, Any], owner_org: str, count: int) -> None:
    """`count` leases of one license written as the acquire script writes them, all expired a second ago
    (a fleet that went away at once)."""
    seconds, micros = await redis.time()
    expired = int(seconds) * 1000 + int(micros) // 1000 - 1000
    lid, org = license_["id"], owner_org
    prefix = f"{keys.LEASES_PREFIX}{lid}"
    fleet = [(str(uuid.uuid4()), f"fleet-{n}") for n in range(count)]
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(f"{prefix}:leases", {sid: expired for sid, _ in fleet})
    pipe.hset(f"{prefix}:hw", mapping={hw: sid for sid, hw in fleet})
    pipe.hset(f"{prefix}:meta", mapping={sid: json.dumps({"hw": hw, "acq": expired, "n": 0}) for sid, hw in fleet})
    pipe.zadd(keys.LEASE_EXPIRY_INDEX, {f"{lid}:{sid}": expired for sid, _ in fleet})
    for sid, hw in fleet:
        pipe.hset(keys.lease(sid), mapping={"license": lid, "org": org, "hw": hw})
    await pipe.execute()


async def test_thousands_of_leases_expiring_at_once_are_ended_a_bounded_step_at_a_time(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Each Redis script call ends a bounded number of expired leases: one call ending them all would
    hold Redis (every organization's requests) for as long as that takes, a second for 100,000."""
    license_ = await create_license(owner, seats=6000)
    redis = app.state.redis
    await _expired_fleet(redis, license_, owner.organization_id, 5000)

    taken = await acquire(owner, license_["key_string"], "newcomer")
    assert taken.status_code == 200, taken.text
    assert taken.json()["seats_remaining"] == 5999  # the expired leases hold no seat, swept or not
    assert await redis.llen(keys.LEASES_ENDED) <= SWEEP_STEP

    ctx: dict[str, Any] = {"settings": app.state.settings}
    await startup(ctx)
    try:
        ended = await record_ended_sessions_task(ctx)
    finally:
        await shutdown(ctx)
    assert ended == 5000
    assert await redis.llen(keys.LEASES_ENDED) == 0
    assert await redis.zcount(keys.LEASE_EXPIRY_INDEX, "-inf", "+inf") == 1  # the newcomer's
    beat = await client.patch(
        f"/api/v1/licenses/sessions/{taken.json()['session_id']}/heartbeat/", headers=owner.headers
    )
    assert beat.status_code == 200 and beat.json()["seats_remaining"] == 5999


async def test_a_restore_in_steps_keeps_the_newest_sessions_up_to_the_seats(app: FastAPI) -> None:
    """A license's open sessions are rebuilt a bounded step at a time, newest first across the steps:
    the seats go to the newest, a machine named twice keeps its newest session, the rest end."""
    leases: Leases = app.state.leases
    license_id, organization_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    sessions = [
        OpenSession(uuid.uuid4(), f"machine-{n}", now - timedelta(seconds=n)) for n in range(RESTORE_STEP + 500)
    ]
    again = OpenSession(uuid.uuid4(), "machine-0", now - timedelta(hours=1))  # machine-0's older session
    seats = RESTORE_STEP + 100
    restored, ended = await leases.restore(license_id, organization_id, seats, 60, [again, *sessions])
    assert (restored, ended) == (seats, len(sessions) - seats + 1)
    live = {lease.session_id for lease in await leases.live(license_id, seats + 10)}
    assert live == {session.session_id for session in sessions[:seats]}
