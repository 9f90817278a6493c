"""API-key callers of the seat routes: answered from Redis once warm, like a signed-in user, and every
change that affects the key still counts on the very next request: the key revoked, its creator
removed, lowered or deactivated, the key expired, its IP allow-list, the mode header, and its
`last_used_at` kept to the minute (`access/admission.py`, `access/callers.py`)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backplane.core import keys
from tests.fixtures.assertions import assert_licensing_error
from tests.fixtures.auth import Account, Api
from tests.fixtures.sql import statements
from tests.licenses.conftest import create_license
from tests.licenses.test_seat_caches import HEARTBEAT

ACQUIRE = "/api/v1/licenses/acquire/"
REVOKED = "This API key has been revoked."


def _bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


async def _warm_key_seat(
    owner: Account, client: httpx.AsyncClient, creator: Account | None = None, **key: Any
) -> tuple[dict[str, Any], str, str]:
    """A key of `creator` (default: the owner), a seat it acquired and heartbeat once: the caches warm."""
    license_ = await create_license(owner, seats=3)
    created = await (creator or owner).create_key(**key)
    auth = _bearer(created["key"])
    acquired = await client.post(
        ACQUIRE, json={"license_key": license_["key_string"], "hardware_id": "ci-1"}, headers=auth
    )
    assert acquired.status_code == 200, acquired.text
    session_id = acquired.json()["session_id"]
    beat = await client.patch(HEARTBEAT.format(session_id), headers=auth)
    assert beat.status_code == 200, beat.text
    return created, license_["key_string"], session_id


async def test_a_warm_api_key_heartbeats_acquires_and_releases_without_postgresql(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    created, license_key, session_id = await _warm_key_seat(owner, client)
    auth = _bearer(created["key"])
    with statements(app) as seen:
        for _ in range(5):
            beat = await client.patch(HEARTBEAT.format(session_id), headers=auth)
            assert beat.status_code == 200, beat.text
        resumed = await client.post(ACQUIRE, json={"license_key": license_key, "hardware_id": "ci-1"}, headers=auth)
        assert resumed.status_code == 200 and resumed.json()["session_id"] == session_id
        released = await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=auth)
        assert released.json() == {"message": "Seat released.", "seats_remaining": 3}
    assert seen == []


async def test_a_revoked_key_is_refused_at_once(owner: Account, client: httpx.AsyncClient) -> None:
    created, license_key, session_id = await _warm_key_seat(owner, client)
    revoked = await client.delete(f"/v1/api-keys/{created['id']}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    auth = _bearer(created["key"])
    assert_licensing_error(await client.patch(HEARTBEAT.format(session_id), headers=auth), 401, "Unauthorized", REVOKED)
    again = await client.post(ACQUIRE, json={"license_key": license_key, "hardware_id": "ci-2"}, headers=auth)
    assert_licensing_error(again, 401, "Unauthorized", REVOKED)


async def _member_key_seat(api: Api, owner: Account, client: httpx.AsyncClient, email: str) -> tuple[Account, str, str]:
    """An admin of `owner`'s organization, a key they created there, and a seat it holds, warm."""
    member = await api.register(email)
    await api.add_member(owner, member, "admin")
    created = await client.post("/v1/api-keys", json={"name": "ci"}, headers=member.in_org(owner.organization_id))
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    license_ = await create_license(owner, seats=3)
    body = {"license_key": license_["key_string"], "hardware_id": "ci-1"}
    acquired = await client.post(ACQUIRE, json=body, headers=_bearer(secret))
    assert acquired.status_code == 200, acquired.text
    session_id = acquired.json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=_bearer(secret))).status_code == 200
    return member, secret, session_id


@pytest.mark.parametrize("gone", ["removed", "deactivated"])
async def test_a_key_whose_creator_was_removed_or_deactivated_is_refused_at_once(
    api: Api, owner: Account, client: httpx.AsyncClient, gone: str
) -> None:
    member, secret, session_id = await _member_key_seat(api, owner, client, f"{gone}-creator@example.com")
    if gone == "removed":  # by the organization's owner
        path, headers = f"/v1/organizations/{owner.organization_id}/members/{member.user_id}", owner.headers
    else:  # the creator closed their own account
        path, headers = "/v1/users/me", member.headers
    answer = await client.delete(path, headers=headers)
    assert answer.status_code == 204, answer.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=_bearer(secret))
    assert_licensing_error(beat, 401, "Unauthorized", REVOKED)


async def test_a_key_whose_creator_was_lowered_to_viewer_cannot_write_at_once(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    member, secret, session_id = await _member_key_seat(api, owner, client, "lowered-creator@example.com")
    lowered = await client.patch(
        f"/v1/organizations/{owner.organization_id}/members/{member.user_id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert lowered.status_code == 200, lowered.text
    beat = await client.patch(HEARTBEAT.format(session_id), headers=_bearer(secret))
    assert_licensing_error(
        beat,
        403,
        "Forbidden",
        "This API key's creator no longer has a role that allows 'write' (their role is 'viewer').",
    )


async def test_a_key_expires_on_time_though_warm(owner: Account, client: httpx.AsyncClient) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    created, _, session_id = await _warm_key_seat(owner, client, expires_at=expires.isoformat())
    auth = _bearer(created["key"])
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    beat = await client.patch(HEARTBEAT.format(session_id), headers=auth)
    assert_licensing_error(beat, 401, "Unauthorized", "This API key has expired.")


async def test_a_read_only_key_and_the_other_mode_are_refused_though_warm(
    owner: Account, client: httpx.AsyncClient
) -> None:
    created, _, session_id = await _warm_key_seat(owner, client)
    beat = await client.patch(
        HEARTBEAT.format(session_id), headers=_bearer(created["key"], **{"X-Backplane-Mode": "test"})
    )
    assert beat.status_code == 400, beat.text
    assert beat.json()["detail"].startswith("This is a live-mode API key; it cannot act in test mode")
    read_only = await owner.create_key(scopes=["read"])
    for _ in range(2):  # the second time too: a refusal is never what the cache keeps
        refused = await client.patch(HEARTBEAT.format(session_id), headers=_bearer(read_only["key"]))
        assert_licensing_error(refused, 403, "Forbidden", "This API key lacks the 'write' scope.")


async def test_a_key_with_an_ip_allow_list_is_checked_against_postgresql_every_time(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    # The test client's address is 127.0.0.1 (httpx's ASGI transport).
    created, _, session_id = await _warm_key_seat(owner, client, allowed_ips=["127.0.0.1/32"])
    with statements(app) as seen:
        beat = await client.patch(HEARTBEAT.format(session_id), headers=_bearer(created["key"]))
        assert beat.status_code == 200, beat.text
    assert any("FROM api_keys" in statement for statement in seen)
    other = await owner.create_key(allowed_ips=["203.0.113.0/24"])
    refused = await client.patch(HEARTBEAT.format(session_id), headers=_bearer(other["key"]))
    assert_licensing_error(refused, 403, "Forbidden", "This API key may not be used from this IP address.")


async def test_a_warm_key_still_records_its_use_to_the_minute(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, sql: Any
) -> None:
    created, _, session_id = await _warm_key_seat(owner, client)
    auth = _bearer(created["key"])
    # A minute and more later (both clocks moved back): the key's use is recorded again.
    a_minute_ago = datetime.now(UTC) - timedelta(seconds=61)
    await sql("UPDATE api_keys SET last_used_at = :at WHERE id = :id", at=a_minute_ago, id=created["id"])
    redis = app.state.redis
    caller = keys.caller(owner.user_id)  # the key's entry lives in its creator's hash
    field = f"key:{created['id']}"
    entry = await redis.hget(caller, field)
    assert entry is not None, await redis.hgetall(caller)
    kind, organization, scopes, expires, checked = entry.split("|")
    await redis.hset(caller, field, "|".join([kind, organization, scopes, expires, str(int(checked) - 61_000)]))
    assert (await client.patch(HEARTBEAT.format(session_id), headers=auth)).status_code == 200
    [[last_used_at]] = await sql("SELECT last_used_at FROM api_keys WHERE id = :id", id=created["id"])
    assert last_used_at > a_minute_ago + timedelta(seconds=30)
    # Recording the use changes nothing the caches copy: the key (and its creator) stay warm.
    with statements(app) as seen:
        assert (await client.patch(HEARTBEAT.format(session_id), headers=auth)).status_code == 200
    assert seen == []


async def test_another_organizations_key_finds_no_license_or_session_though_warm(
    api: Api, owner: Account, client: httpx.AsyncClient
) -> None:
    _, license_key, session_id = await _warm_key_seat(owner, client)
    stranger = await api.register("stranger-key@example.com", company="Other")
    foreign = await stranger.create_key()
    auth = _bearer(foreign["key"])
    for _ in range(2):
        beat = await client.patch(HEARTBEAT.format(session_id), headers=auth)
        assert_licensing_error(beat, 404, "Not found", "Session not found or expired. Acquire a seat again.")
        taken = await client.post(ACQUIRE, json={"license_key": license_key, "hardware_id": "x"}, headers=auth)
        assert_licensing_error(taken, 404, "Not found", "License not found.")


async def test_a_key_stays_warm_on_an_api_host_whose_clock_is_behind_redis(
    owner: Account, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry's "checked" time is Redis's clock, which the script compares it with: an API host two
    minutes behind (NTP lost) must not stamp every entry as already too old to admit."""
    license_ = await create_license(owner, seats=3)
    auth = _bearer((await owner.create_key())["key"])
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 120)  # this process's clock, from here on
    acquired = await client.post(
        ACQUIRE, json={"license_key": license_["key_string"], "hardware_id": "ci-1"}, headers=auth
    )
    assert acquired.status_code == 200, acquired.text
    heartbeat = HEARTBEAT.format(acquired.json()["session_id"])
    assert (await client.patch(heartbeat, headers=auth)).status_code == 200  # the script's miss fills the entry
    with statements(app) as seen:
        beat = await client.patch(heartbeat, headers=auth)
    assert beat.status_code == 200, beat.text
    assert seen == []


async def test_creating_a_key_leaves_its_creators_cached_entries_warm(
    owner: Account, client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Only a change to a key (revoked, edited) can change what an entry of it says; a new key has no
    entry yet, so its creation must not send its creator's requests back to PostgreSQL."""
    license_ = await create_license(owner, seats=2)
    acquired = await client.post(
        ACQUIRE, json={"license_key": license_["key_string"], "hardware_id": "ci-1"}, headers=owner.headers
    )
    heartbeat = HEARTBEAT.format(acquired.json()["session_id"])
    assert (await client.patch(heartbeat, headers=owner.headers)).status_code == 200
    await owner.create_key()
    with statements(app) as seen:
        assert (await client.patch(heartbeat, headers=owner.headers)).status_code == 200
    assert seen == []
