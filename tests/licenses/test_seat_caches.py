"""The seat routes answer from Redis alone, and every change that affects them still counts on the very
next request: member removed, role lowered, user deactivated, token revoked, license suspended,
organization deleted (`access/callers.py`, `licenses/state.py`)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core import keys, versioned
from backplane.core.config import Settings
from backplane.licenses import keys as license_keys
from backplane.licenses import state
from tests.auth.helpers import claims_for, forge
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account, Api
from tests.fixtures.sql import statements
from tests.licenses.conftest import acquire, create_license

SESSION_GONE = "Session not found or expired. Acquire a seat again."
HEARTBEAT = "/api/v1/licenses/sessions/{}/heartbeat/"


async def _member_with_seat(api: Api, owner: Account, role: str = "member") -> tuple[Account, dict[str, Any], str]:
    member = await api.register(f"{role}-seat@example.com")
    await api.add_member(owner, member, role)
    license_ = await create_license(owner, seats=3)
    headers = member.in_org(owner.organization_id)
    acquired = await member.client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "member-machine"},
        headers=headers,
    )
    assert acquired.status_code == 200, acquired.text
    session_id = acquired.json()["session_id"]
    beat = await member.client.patch(HEARTBEAT.format(session_id), headers=headers)
    assert beat.status_code == 200, beat.text  # the caches are warm from here
    return member, license_, session_id


async def test_heartbeats_and_releases_do_not_touch_postgresql_once_warm(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    license_ = await create_license(owner, seats=2)
    session_id = (await acquire(owner, license_["key_string"])).json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)).status_code == 200
    with statements(app) as seen:
        for _ in range(5):
            beat = await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)
            assert beat.status_code == 200
        released = await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=owner.headers)
        assert released.json() == {"message": "Seat released.", "seats_remaining": 2}
    assert seen == []
    with statements(app) as seen:  # an acquire writes its history row and its seat.acquired event, nothing else
        assert (await acquire(owner, license_["key_string"], "machine-2")).status_code == 200
    [write] = seen  # one statement: WITH batch AS (...), inserted AS (INSERT INTO license_sessions ...) INSERT ...
    assert "INSERT INTO license_sessions" in write and "INSERT INTO events" in write


async def test_a_removed_member_is_refused_at_once(api: Api, owner: Account, client: httpx.AsyncClient) -> None:
    member, license_, session_id = await _member_with_seat(api, owner)
    removed = await client.delete(
        f"/v1/organizations/{owner.organization_id}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204, removed.text
    headers = member.in_org(owner.organization_id)
    beat = await client.patch(HEARTBEAT.format(session_id), headers=headers)
    assert_licensing_error(beat, 404, "Not found", "Organization not found.")
    again = await client.post(
        "/api/v1/licenses/acquire/", json={"license_key": license_["key_string"], "hardware_id": "x"}, headers=headers
    )
    assert_licensing_error(again, 404, "Not found", "Organization not found.")
    released = await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=headers)
    assert_licensing_error(released, 404, "Not found", "Organization not found.")


async def test_a_lowered_role_is_refused_at_once(api: Api, owner: Account, client: httpx.AsyncClient) -> None:
    member, _, session_id = await _member_with_seat(api, owner)
    lowered = await client.patch(
        f"/v1/organizations/{owner.organization_id}/members/{member.user_id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert lowered.status_code == 200, lowered.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=member.in_org(owner.organization_id))
    assert_licensing_error(
        beat, 403, "Forbidden", "Your role 'viewer' does not allow this action; it requires 'member'."
    )
    raised = await client.patch(
        f"/v1/organizations/{owner.organization_id}/members/{member.user_id}",
        json={"role": "member"},
        headers=owner.headers,
    )
    assert raised.status_code == 200, raised.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=member.in_org(owner.organization_id))
    assert beat.status_code == 200, beat.text


async def test_a_deactivated_user_is_refused_at_once(api: Api, owner: Account, client: httpx.AsyncClient) -> None:
    member, _, session_id = await _member_with_seat(api, owner)
    gone = await client.delete("/v1/users/me", headers=member.headers)
    assert gone.status_code == 204, gone.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=member.in_org(owner.organization_id))
    assert_licensing_error(beat, 401, "Unauthorized", "Access token has been revoked.")


async def test_a_logged_out_sign_in_is_refused_at_once(owner: Account, client: httpx.AsyncClient) -> None:
    license_ = await create_license(owner, seats=1)
    session_id = (await acquire(owner, license_["key_string"])).json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)).status_code == 200
    out = await client.post("/api/v1/auth/logout/", json={"refresh": owner.refresh}, headers=owner.headers)
    assert out.status_code in (200, 204), out.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)
    assert_licensing_error(beat, 401, "Unauthorized", "Access token has been revoked.")


async def test_a_suspended_license_keeps_no_seat_and_a_reactivated_one_does(
    owner: Account, client: httpx.AsyncClient
) -> None:
    license_ = await create_license(owner, seats=2)
    session_id = (await acquire(owner, license_["key_string"])).json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)).status_code == 200
    suspended = await client.patch(
        f"/api/v1/licenses/{license_['id']}/", json={"suspended": True}, headers=owner.headers
    )
    assert suspended.status_code == 200, suspended.text
    message = "This license is suspended. Contact your administrator."
    assert_licensing_error(
        await client.patch(HEARTBEAT.format(session_id), headers=owner.headers), 403, "Forbidden", message
    )
    assert_licensing_error(await acquire(owner, license_["key_string"], "machine-2"), 403, "Forbidden", message)
    reactivated = await client.patch(
        f"/api/v1/licenses/{license_['id']}/", json={"suspended": False}, headers=owner.headers
    )
    assert reactivated.status_code == 200, reactivated.text
    assert (await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)).status_code == 200


async def test_a_deleted_organization_leaves_its_members_nothing(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    member, _, session_id = await _member_with_seat(api, owner)
    deleted = await client.delete(f"/v1/organizations/{owner.organization_id}", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=member.in_org(owner.organization_id))
    assert_licensing_error(beat, 404, "Not found", "Organization not found.")


async def test_an_api_key_holds_seats_and_a_revoked_key_is_refused_at_once(
    owner: Account, client: httpx.AsyncClient
) -> None:
    key = await owner.create_key(scopes=["read", "write"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    license_ = await create_license(owner, seats=1)
    acquired = await client.post(
        "/api/v1/licenses/acquire/", json={"license_key": license_["key_string"], "hardware_id": "ci"}, headers=headers
    )
    assert acquired.status_code == 200, acquired.text
    session_id = acquired.json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=owner.headers)
    assert revoked.status_code in (200, 204), revoked.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=headers)
    assert_licensing_error(beat, 401, "Unauthorized", "This API key has been revoked.")


async def test_a_read_only_key_cannot_hold_seats(owner: Account, client: httpx.AsyncClient) -> None:
    key = await owner.create_key(scopes=["read"])
    license_ = await create_license(owner, seats=1)
    refused = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "ci"},
        headers={"Authorization": f"Bearer {key['key']}"},
    )
    assert_licensing_error(refused, 403, "Forbidden", "This API key lacks the 'write' scope.")


async def test_another_organizations_session_and_license_are_not_found(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    license_ = await create_license(owner, seats=1)
    session_id = (await acquire(owner, license_["key_string"])).json()["session_id"]
    stranger = await api.register("stranger@example.com")
    beat = await client.patch(HEARTBEAT.format(session_id), headers=stranger.headers)
    assert_licensing_error(beat, 404, "Not found", SESSION_GONE)
    released = await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=stranger.headers)
    assert_licensing_error(released, 404, "Not found", SESSION_GONE)
    taken = await acquire(stranger, license_["key_string"])
    assert_licensing_error(taken, 404, "Not found", "License not found.")
    assert (await client.patch(HEARTBEAT.format(session_id), headers=owner.headers)).status_code == 200


async def test_a_fill_that_read_before_an_invalidation_is_dropped(app: FastAPI) -> None:
    redis = app.state.redis
    key = keys.caller("00000000-0000-0000-0000-000000000001")
    await redis.delete(key)
    assert await versioned.fill(redis, key, "0", {"default": "m|org|owner"}, 60_000)
    await versioned.invalidate(redis, [key])  # a change committed after the filler read PostgreSQL
    assert not await versioned.fill(redis, key, "0", {"default": "m|org|viewer"}, 60_000)
    assert await redis.hget(key, "default") is None
    assert await versioned.fill(redis, key, "1", {"default": "m|org|viewer"}, 60_000)
    assert await redis.hget(key, "default") == "m|org|viewer"


async def test_concurrent_history_rows_share_one_insert_and_a_bad_row_fails_alone(
    owner: Account,
    app: FastAPI,
    sql,  # type: ignore[no-untyped-def]
) -> None:
    license_ = await create_license(owner, seats=1)

    def row(license_id: str) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "organization_id": uuid.UUID(owner.organization_id),
            "license_id": uuid.UUID(license_id),
            "livemode": True,
            "hardware_id": "batch",
            "ip_address": None,
            "client_version": None,
            "acquired_at": datetime.now(UTC),
        }

    good = [row(license_["id"]) for _ in range(5)]
    bad = row(str(uuid.uuid4()))  # no such license: a foreign-key violation
    with statements(app) as seen:
        results = await asyncio.gather(
            *(app.state.session_history.insert(r) for r in [*good[:3], bad, *good[3:]]), return_exceptions=True
        )
    assert [isinstance(r, IntegrityError) for r in results] == [False, False, False, True, False, False]
    # The batch, then each row alone: one statement each, writing the history rows and their
    # seat.acquired events together (one round trip; one statement is atomic alone).
    writes = [s for s in seen if "license_sessions" in s]
    assert len(writes) == 1 + 6
    assert all("INSERT INTO events" in s for s in writes)
    stored = await sql("SELECT count(*) FROM license_sessions WHERE hardware_id = 'batch'")
    assert stored[0][0] == 5
    announced = await sql("SELECT count(*) FROM events WHERE type = 'seat.acquired' AND data->>'hardware_id' = 'batch'")
    assert announced[0][0] == 5  # both or neither


_FOR_THIS_DATABASE = "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I {}', current_database()); END $$"


async def test_the_seat_acquired_event_postgresql_makes_says_what_its_history_row_says(
    owner: Account,
    app: FastAPI,
    sql,  # type: ignore[no-untyped-def]
) -> None:
    """The event is built by the statement that inserts the history row (`seat_events.ACQUIRED_EVENT`):
    its data is what the other seat events carry, times as `datetime.isoformat` writes them, whole
    seconds included, in whatever time zone the connection is in."""
    license_ = await create_license(owner, seats=3)
    acquired = [
        datetime(2026, 11, 29, 5, 12, 1, 120000, tzinfo=UTC),
        datetime(2026, 11, 29, 5, 12, 2, tzinfo=UTC),  # no microseconds: isoformat writes none
        datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    rows = [
        {
            "id": uuid.uuid4(),
            "organization_id": uuid.UUID(owner.organization_id),
            "license_id": uuid.UUID(license_["id"]),
            "livemode": False,
            "hardware_id": f"machine-{i}",
            "ip_address": "203.0.113.9",
            "client_version": "2.4.1" if i else None,
            "acquired_at": at,
        }
        for i, at in enumerate(acquired)
    ]
    await sql(_FOR_THIS_DATABASE.format("SET timezone = ''America/St_Johns''"))  # a half-hour offset
    try:
        await app.state.session_history.aclose()  # new connections, in that time zone
        await asyncio.gather(*(app.state.session_history.insert(row) for row in rows))
    finally:
        await sql(_FOR_THIS_DATABASE.format("RESET timezone"))
        await app.state.session_history.aclose()
    for row in rows:
        [(event_id, organization_id, data, livemode, created_at)] = await sql(
            "SELECT id, organization_id, data, livemode, created_at FROM events "
            f"WHERE type = 'seat.acquired' AND data->>'session_id' = '{row['id']}'"
        )
        assert re.fullmatch(r"evt_[0-9a-f]{24}", event_id)
        assert (organization_id, livemode, created_at) == (row["organization_id"], False, row["acquired_at"])
        assert data == {
            "session_id": str(row["id"]),
            "license_id": license_["id"],
            "hardware_id": row["hardware_id"],
            "client_version": row["client_version"],
            "acquired_at": row["acquired_at"].isoformat(),
        }


async def test_a_token_verified_once_still_expires(
    owner: Account, client: httpx.AsyncClient, settings: Settings
) -> None:
    license_ = await create_license(owner, seats=1)
    session_id = (await acquire(owner, license_["key_string"])).json()["session_id"]
    short = {"Authorization": f"Bearer {forge(claims_for(owner.user_id, ttl=2), settings.secret_key)}"}
    assert (await client.patch(HEARTBEAT.format(session_id), headers=short)).status_code == 200  # verified, kept
    await asyncio.sleep(2.1)
    expired = await client.patch(HEARTBEAT.format(session_id), headers=short)
    assert_licensing_error(expired, 401, "Unauthorized", "Access token has expired.")


async def test_history_writes_keep_their_connections_instead_of_a_checkout_and_a_ping_each(
    owner: Account, app: FastAPI
) -> None:
    """A pool checkout with its ping cost the history writer as much as its statement (a round trip
    more for every batch): its connections are held across batches, the pool asked once."""
    license_ = await create_license(owner, seats=5)
    assert (await acquire(owner, license_["key_string"], "first")).status_code == 200
    checkouts: list[object] = []
    pool = app.state.session_history.engine.sync_engine.pool

    def checked_out(*_: object) -> None:
        checkouts.append(_)

    event.listen(pool, "checkout", checked_out)
    try:
        for machine in ("second", "third", "fourth"):  # one after the other: a batch each
            assert (await acquire(owner, license_["key_string"], machine)).status_code == 200
    finally:
        event.remove(pool, "checkout", checked_out)
    assert checkouts == []


async def test_an_acquire_after_postgresql_dropped_the_connections_is_written_on_a_new_one(
    owner: Account,
    sql,  # type: ignore[no-untyped-def]
) -> None:
    """What a PostgreSQL restart does to the pooled connections of the history writer: the next
    acquire's checkout finds its connection dead and takes a fresh one, so the acquire is not refused."""
    license_ = await create_license(owner, seats=3)
    assert (await acquire(owner, license_["key_string"], "before")).status_code == 200  # the pool is warm
    await sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    after = await acquire(owner, license_["key_string"], "after")
    assert after.status_code == 200, after.text
    stored = await sql("SELECT count(*) FROM license_sessions WHERE id = :id", id=uuid.UUID(after.json()["session_id"]))
    assert stored[0][0] == 1


async def test_a_burst_of_first_acquires_reads_the_license_from_postgresql_once(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A fleet starting at once on a license Redis has not seen: the machines' acquires wait for one read
    of the license (its key's index, then its state), not one read each."""
    license_ = await create_license(owner, seats=40)
    warm = await acquire(owner, license_["key_string"], "warm-up")  # the caller's own cache, warm
    assert warm.status_code == 200, warm.text
    redis = app.state.redis
    await redis.delete(state.key_index(license_["key_string"]))
    await versioned.invalidate(redis, [keys.license_state(uuid.UUID(license_["id"]))])
    with statements(app) as seen:
        answers = await asyncio.gather(*(acquire(owner, license_["key_string"], f"fleet-{i}") for i in range(32)))
    assert [answer.status_code for answer in answers] == [200] * 32
    assert len({answer.json()["session_id"] for answer in answers}) == 32
    reads = [statement for statement in seen if "FROM licenses" in statement]
    assert len(reads) == 2, reads  # the key looked up once, the state copied once


async def _burst_while_licenses_are_locked(
    settings: Settings, owner: Account, key: str, app: FastAPI
) -> tuple[list[httpx.Response], int]:
    """Eight acquires of `key` at once, while another transaction holds `licenses` locked for a moment:
    the first read of the license waits there, so every request of the burst misses while it is
    running however slowly the machine gets them going (on a loaded CI machine they once spread out
    enough for five reads). The answers and how many reads of `licenses` were sent."""
    engine = create_async_engine(settings.database.url)
    try:
        with statements(app) as seen:
            async with engine.begin() as connection:
                await connection.execute(text("LOCK TABLE licenses IN ACCESS EXCLUSIVE MODE"))
                burst = asyncio.gather(*(acquire(owner, key, f"fleet-{i}") for i in range(8)))
                await asyncio.sleep(0.5)
            answers = await burst
    finally:
        await engine.dispose()
    return list(answers), len([statement for statement in seen if "FROM licenses" in statement])


async def test_a_burst_on_an_unknown_or_suspended_license_shares_one_read_and_each_gets_the_refusal(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    unknown = license_keys.generate("PROD", 2026)  # well formed, in no organization
    answers, reads = await _burst_while_licenses_are_locked(settings, owner, unknown, app)
    for answer in answers:
        assert_licensing_error(answer, 404, "Not found", "License not found.")
    assert 1 <= reads <= 3  # a request whose miss comes after a read ended reads again: no refusal is kept

    license_ = await create_license(owner, seats=8)
    suspended = await client.patch(
        f"/api/v1/licenses/{license_['id']}/", json={"suspended": True}, headers=owner.headers
    )
    assert suspended.status_code == 200, suspended.text
    answers, reads = await _burst_while_licenses_are_locked(settings, owner, license_["key_string"], app)
    for answer in answers:
        assert_licensing_error(answer, 403, "Forbidden", "This license is suspended. Contact your administrator.")
    assert 1 <= reads <= 3  # one request each: 16 (the state copied, then the refusal checked)


async def test_a_shared_fill_outlives_a_waiter_that_went_away_and_is_not_kept() -> None:
    fills = versioned.SharedFills()
    started, release = asyncio.Event(), asyncio.Event()
    runs = 0

    async def fill() -> str:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return f"run {runs}"

    first = asyncio.ensure_future(fills.run("entry", fill))
    await started.wait()
    second = asyncio.ensure_future(fills.run("entry", fill))
    await asyncio.sleep(0)
    first.cancel()  # its client went away: the fill the second waits for goes on
    release.set()
    assert await second == "run 1"
    assert first.cancelled()
    assert await fills.run("entry", fill) == "run 2"  # the next miss reads again

    async def refused() -> str:
        raise ValueError("no such entry")

    outcomes = await asyncio.gather(*(fills.run("gone", refused) for _ in range(3)), return_exceptions=True)
    assert [str(outcome) for outcome in outcomes] == ["no such entry"] * 3
