"""The seat routes' fast path (`licenses/fast_path.py`) answers exactly what their FastAPI routes answer.

Two apps over the same PostgreSQL and Redis: `client` (the default, fast path on) and `slow` (the
same settings with SEAT_FAST_PATH off, so every seat request goes through FastAPI). Each request is
sent to both with the same X-Request-ID, and the two answers must be the same status, headers and
body (a time or a new session id aside, where the two cannot be equal). `handed_over` counts what
the fast path passed to the FastAPI route, to show which path answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backplane.app import create_app
from backplane.core.config import Settings
from backplane.licenses.fast_path import SeatFastPath
from tests.auth.helpers import claims_for, forge
from tests.fixtures.auth import Account, Api
from tests.licenses.conftest import create_license

ACQUIRE = "/api/v1/licenses/acquire/"
HEARTBEAT = "/api/v1/licenses/sessions/{}/heartbeat/"
RELEASE = "/api/v1/licenses/sessions/{}/"
_TIMES = re.compile(rb'"expires_at":"[^"]*"')


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def slow_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update={"seat_fast_path": False}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def slow(slow_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(slow_app):
        yield http


class HandedOver:
    """Requests the fast path handed to the FastAPI route (its `app` wrapped to count them)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def wrap(self, fast: SeatFastPath) -> None:
        inner = fast.app

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("route") is not None and scope["route"].endpoint in fast.endpoints:
                self.paths.append(f"{scope['method']} {scope['path']}")
            await inner(scope, receive, send)

        fast.app = counted


@pytest.fixture
async def handed_over(app: FastAPI, client: httpx.AsyncClient) -> HandedOver:
    await client.get("/api/v1/health/")  # the middleware stack is built at the first request
    layer: Any = app.middleware_stack
    while not isinstance(layer, SeatFastPath):
        layer = layer.app
    counter = HandedOver()
    counter.wrap(layer)
    return counter


def _masked(body: bytes, *fields: str) -> bytes:
    body = _TIMES.sub(b'"expires_at":"<time>"', body)
    for name in fields:
        body = re.sub(rb'"' + name.encode() + rb'":"[^"]*"', b'"' + name.encode() + b'":"<masked>"', body)
    return body


def _headers(response: httpx.Response, *skip: str) -> list[tuple[str, str]]:
    # content-length follows the body (a time's digits); everything else must match as sent.
    return [(k, v) for k, v in response.headers.multi_items() if k not in ("content-length", *skip)]


async def same(
    fast: httpx.AsyncClient,
    slow: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    mask: tuple[str, ...] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send the request to both apps (the fast one first); assert equal answers; return the fast one's."""
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": f"req-same-{method}-{len(url)}"}
    one = await fast.request(method, url, headers=headers, **kwargs)
    other = await slow.request(method, url, headers=headers, **kwargs)
    assert one.status_code == other.status_code, (one.text, other.text)
    assert _masked(one.content, *mask) == _masked(other.content, *mask)
    assert _headers(one) == _headers(other)
    return one


def _acquire_body(key: str, hardware_id: str = "machine-1") -> dict[str, str]:
    return {"license_key": key, "hardware_id": hardware_id, "ip_address": "10.0.0.7", "client_version": "1.0.0"}


async def test_success_answers_are_the_same_and_come_from_the_fast_path(
    owner: Account, client: httpx.AsyncClient, slow: httpx.AsyncClient, handed_over: HandedOver
) -> None:
    first, second = await create_license(owner, seats=3), await create_license(owner, seats=3)
    # A new seat on each of two like licenses: the same answer but for the session, key and time.
    created = await client.post(ACQUIRE, json=_acquire_body(first["key_string"]), headers=owner.headers)
    created_slow = await slow.post(ACQUIRE, json=_acquire_body(second["key_string"]), headers=owner.headers)
    assert created.status_code == created_slow.status_code == 200, (created.text, created_slow.text)
    masked = ("session_id", "license_key")
    assert _masked(created.content, *masked) == _masked(created_slow.content, *masked)
    assert _headers(created, "x-request-id") == _headers(created_slow, "x-request-id")
    assert created.json()["license_key"] == first["key_string"] and created.json()["seats_remaining"] == 2
    session_id = created.json()["session_id"]
    # The same machine again: its session back, from either path.
    resumed = await same(client, slow, "POST", ACQUIRE, json=_acquire_body(first["key_string"]), headers=owner.headers)
    assert resumed.json()["session_id"] == session_id
    beat = await same(client, slow, "PATCH", HEARTBEAT.format(session_id), headers=owner.headers)
    assert set(beat.json()) == {"session_id", "license_key", "expires_at", "is_active", "seats_remaining"}
    assert handed_over.paths == []
    released = await client.delete(RELEASE.format(session_id), headers=owner.headers)
    assert released.status_code == 200
    assert released.content == b'{"message":"Seat released.","seats_remaining":3}'
    released_slow = await slow.delete(RELEASE.format(created_slow.json()["session_id"]), headers=owner.headers)
    assert released_slow.content == released.content
    assert _headers(released, "x-request-id") == _headers(released_slow, "x-request-id")
    assert handed_over.paths == []


async def test_every_refusal_is_the_same(
    api: Api,
    owner: Account,
    client: httpx.AsyncClient,
    slow: httpx.AsyncClient,
    settings: Settings,
    handed_over: HandedOver,
) -> None:
    license_ = await create_license(owner, seats=1)
    key = license_["key_string"]
    session_id = (await client.post(ACQUIRE, json=_acquire_body(key), headers=owner.headers)).json()["session_id"]
    stranger = await api.register("stranger@example.com")
    viewer = await api.register("viewer@example.com")
    await api.add_member(owner, viewer, "viewer")
    read_key = await owner.create_key(scopes=["read"])
    expired = forge(claims_for(owner.user_id, ttl=-10), settings.secret_key)
    auth = owner.headers
    unknown = "00000000-0000-4000-8000-000000000000"
    sessions = [HEARTBEAT.format(session_id), RELEASE.format(session_id)]
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for path, method in ((sessions[0], "PATCH"), (sessions[1], "DELETE")):
        cases += [
            (method, path, {}),  # no credentials
            (method, path, {"headers": {"Authorization": "Bearer not-a-token"}}),
            (method, path, {"headers": {"Authorization": f"Bearer {expired}"}}),
            (method, path, {"headers": {"Authorization": "Basic abc"}}),
            (method, path, {"headers": stranger.headers}),  # another organization's session
            (method, path, {"headers": viewer.in_org(owner.organization_id)}),  # a role without `write`
            (method, path, {"headers": {**auth, "X-Organization-ID": "not-a-uuid"}}),
            (method, path, {"headers": {"Authorization": f"Bearer {read_key['key']}"}}),
            (method, path.replace(session_id, unknown), {"headers": auth}),  # no such session
            (method, path.replace(session_id, "not-a-session-id-of-36-characters-x"), {"headers": auth}),
            (method, path.replace(session_id, "123"), {"headers": auth}),
        ]
    body = json.dumps(_acquire_body(key, "machine-2"))
    json_headers = {**auth, "Content-Type": "application/json"}
    cases += [
        ("POST", ACQUIRE, {"json": _acquire_body(key, "machine-2")}),  # no credentials
        ("POST", ACQUIRE, {"json": _acquire_body(key, "machine-2"), "headers": stranger.headers}),  # not theirs
        ("POST", ACQUIRE, {"json": _acquire_body(key, "machine-2"), "headers": auth}),  # no seat left: 409
        ("POST", ACQUIRE, {"json": _acquire_body("nonsense", "machine-2"), "headers": auth}),
        ("POST", ACQUIRE, {"json": _acquire_body("PROD-2026-AAAA-BBBB-CCCC-DDDD", "m"), "headers": auth}),
        ("POST", ACQUIRE, {"json": {"license_key": key}, "headers": auth}),  # missing hardware id
        ("POST", ACQUIRE, {"json": {**_acquire_body(key), "hardware_id": "with space"}, "headers": auth}),
        ("POST", ACQUIRE, {"json": {**_acquire_body(key), "ip_address": "999.1.1.1"}, "headers": auth}),
        ("POST", ACQUIRE, {"json": [1, 2], "headers": auth}),
        ("POST", ACQUIRE, {"content": b"{not json", "headers": json_headers}),
        ("POST", ACQUIRE, {"content": b"\xff\xfe", "headers": json_headers}),
        ("POST", ACQUIRE, {"content": b"[" * 100_000 + b"]" * 100_000, "headers": json_headers}),
        ("POST", ACQUIRE, {"content": b"x" * 2_000_000, "headers": json_headers}),  # over the body limit
        ("POST", ACQUIRE, {"content": body.encode(), "headers": {**auth, "Content-Type": "text/plain"}}),
        ("POST", ACQUIRE, {"content": b"", "headers": json_headers}),
        ("POST", ACQUIRE, {"content": body.encode(), "headers": {**json_headers, "Authorization": "Bearer x"}}),
        ("GET", ACQUIRE, {"headers": auth}),  # another method: 405 from the router
        ("POST", ACQUIRE.rstrip("/"), {"json": _acquire_body(key), "headers": auth}),  # the trailing slash
        ("PUT", sessions[0], {"headers": auth}),
    ]
    for method, url, kwargs in cases:
        response = await same(client, slow, method, url, **kwargs)
        assert 300 <= response.status_code < 500, (method, url, response.status_code, response.text)  # 307: the slash
    # Another spelling of the session id: FastAPI's to read (here: a heartbeat all the same).
    upper = await same(client, slow, "PATCH", HEARTBEAT.format(session_id.upper()), headers=auth, mask=())
    assert upper.status_code == 200
    # The fast path handed over only what it leaves to FastAPI's validation: the bodies it could not read
    # as an AcquireRequest and the session ids not in canonical form; every refusal of the caller, the
    # license or the session was its own.
    assert all(" /api/v1/licenses/" in path for path in handed_over.paths)
    assert f"PATCH {HEARTBEAT.format(unknown)}" not in handed_over.paths
    assert f"PATCH {HEARTBEAT.format(session_id.upper())}" in handed_over.paths
    assert len([p for p in handed_over.paths if p.startswith("POST")]) == 9  # the 9 bodies from "missing" on


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limits_enabled": True})


async def test_rate_limit_headers_and_refusals_are_the_same(limited_settings: Settings, api: Api) -> None:
    owner = await api.register("limited@example.com")
    license_ = await create_license(owner, seats=1)
    session_id = (
        await api.client.post(ACQUIRE, json=_acquire_body(license_["key_string"]), headers=owner.headers)
    ).json()["session_id"]
    apps = [create_app(limited_settings), create_app(limited_settings.model_copy(update={"seat_fast_path": False}))]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        async for fast in _client(apps[0]):
            async for slow in _client(apps[1]):
                statuses = []
                for _ in range(12):  # the heartbeat limit (20 a minute per session) runs out on the way
                    headers = {**owner.headers, "X-Request-ID": "req-limit"}
                    one = await fast.patch(HEARTBEAT.format(session_id), headers=headers)
                    other = await slow.patch(HEARTBEAT.format(session_id), headers=headers)
                    statuses += [one.status_code, other.status_code]
                    assert one.status_code == other.status_code or one.status_code == 200, (one.text, other.text)
                    assert {k for k, _ in _headers(one)} == {k for k, _ in _headers(other)}
                    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (one, other)]
                    assert remaining[0] in (remaining[1] + 1, 0)  # one hit apart, as sent
                    if one.status_code == other.status_code == 429:
                        assert _masked(one.content) == _masked(other.content)
                assert statuses.count(200) == 20 and statuses.count(429) == 4


async def _member_with_seat(api: Api, owner: Account, client: httpx.AsyncClient) -> tuple[Account, str]:
    member = await api.register("member-seat@example.com")
    await api.add_member(owner, member, "member")
    license_ = await create_license(owner, seats=3)
    headers = member.in_org(owner.organization_id)
    acquired = await client.post(ACQUIRE, json=_acquire_body(license_["key_string"]), headers=headers)
    assert acquired.status_code == 200, acquired.text
    session_id: str = acquired.json()["session_id"]
    assert (await client.patch(HEARTBEAT.format(session_id), headers=headers)).status_code == 200  # warm
    return member, session_id


async def test_removal_role_change_revocation_and_suspension_apply_on_the_next_fast_request(
    api: Api, owner: Account, client: httpx.AsyncClient, slow: httpx.AsyncClient, handed_over: HandedOver
) -> None:
    member, session_id = await _member_with_seat(api, owner, client)
    headers = member.in_org(owner.organization_id)
    members = f"/v1/organizations/{owner.organization_id}/members/{member.user_id}"
    # A lowered role: refused at once, and allowed again at once.
    assert (await client.patch(members, json={"role": "viewer"}, headers=owner.headers)).status_code == 200
    refused = await same(client, slow, "PATCH", HEARTBEAT.format(session_id), headers=headers)
    assert refused.status_code == 403
    assert (await client.patch(members, json={"role": "member"}, headers=owner.headers)).status_code == 200
    assert (await client.patch(HEARTBEAT.format(session_id), headers=headers)).status_code == 200
    # A suspended license: refused at once; reactivated: allowed at once.
    license_id = (await client.get("/api/v1/licenses/", headers=owner.headers)).json()["licenses"][0]["id"]
    suspend = f"/api/v1/licenses/{license_id}/"
    assert (await client.patch(suspend, json={"suspended": True}, headers=owner.headers)).status_code == 200
    refused = await same(client, slow, "PATCH", HEARTBEAT.format(session_id), headers=headers)
    assert refused.json()["detail"] == "This license is suspended. Contact your administrator."
    assert (await client.patch(suspend, json={"suspended": False}, headers=owner.headers)).status_code == 200
    assert (await client.patch(HEARTBEAT.format(session_id), headers=headers)).status_code == 200
    # A revoked API key: refused at once.
    key = await owner.create_key(scopes=["read", "write"])
    key_headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.patch(HEARTBEAT.format(session_id), headers=key_headers)).status_code in (200, 404)
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=owner.headers)).status_code in (200, 204)
    revoked = await same(client, slow, "PATCH", HEARTBEAT.format(session_id), headers=key_headers)
    assert revoked.json()["detail"] == "This API key has been revoked."
    # A removed member: refused at once, on every seat route.
    assert (await client.delete(members, headers=owner.headers)).status_code == 204
    for method, url in (("PATCH", HEARTBEAT.format(session_id)), ("DELETE", RELEASE.format(session_id))):
        gone = await same(client, slow, method, url, headers=headers)
        assert gone.status_code == 404 and gone.json()["detail"] == "Organization not found."
    assert handed_over.paths == []  # every answer above was the fast path's


async def test_x_backplane_mode_is_honoured_the_same_by_both_paths(
    owner: Account, client: httpx.AsyncClient, slow: httpx.AsyncClient, handed_over: HandedOver
) -> None:
    live = await create_license(owner, seats=3)
    test_mode = {**owner.headers, "X-Backplane-Mode": "test"}
    created = await client.post("/api/v1/licenses/", json={"tier": "pro", "seats": 3}, headers=test_mode)
    assert created.status_code == 201 and created.json()["livemode"] is False, created.text
    test_key = created.json()["key_string"]
    live_key_secret = (await owner.create_key(scopes=["read", "write"]))["key"]
    # A user in test mode takes a seat of a test license (each path its own machine), not of a live one.
    for http, machine in ((client, "machine-fast"), (slow, "machine-slow")):
        taken = await http.post(ACQUIRE, json=_acquire_body(test_key, machine), headers=test_mode)
        assert taken.status_code == 200 and taken.json()["license_key"] == test_key, taken.text
    session_id = taken.json()["session_id"]
    assert (await same(client, slow, "PATCH", HEARTBEAT.format(session_id), headers=test_mode)).status_code == 200
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", ACQUIRE, {"json": _acquire_body(live["key_string"], "m-live"), "headers": test_mode}),  # 404
        ("POST", ACQUIRE, {"json": _acquire_body(test_key, "m-test"), "headers": owner.headers}),  # live: 404
        ("PATCH", HEARTBEAT.format(session_id), {"headers": owner.headers}),  # a test session, in live mode
        ("DELETE", RELEASE.format(session_id), {"headers": {**owner.headers, "X-Backplane-Mode": "live"}}),
        ("PATCH", HEARTBEAT.format(session_id), {"headers": {**owner.headers, "X-Backplane-Mode": "sandbox"}}),
        (
            "POST",
            ACQUIRE,
            {"json": _acquire_body(test_key, "m-bad"), "headers": {**owner.headers, "X-Backplane-Mode": ""}},
        ),
        (
            "POST",
            ACQUIRE,
            {
                "json": _acquire_body(live["key_string"], "m-key"),
                "headers": {"Authorization": f"Bearer {live_key_secret}", "X-Backplane-Mode": "test"},
            },
        ),
    ]
    statuses = []
    for method, url, kwargs in cases:
        statuses.append((await same(client, slow, method, url, **kwargs)).status_code)
    assert statuses == [404, 404, 404, 404, 400, 400, 400]
    released = await client.delete(RELEASE.format(session_id), headers=test_mode)
    assert released.json() == {"message": "Seat released.", "seats_remaining": 2}  # the fast path's seat remains
    again = await slow.delete(RELEASE.format(session_id), headers=test_mode)
    assert again.status_code == 404
    assert handed_over.paths == []
