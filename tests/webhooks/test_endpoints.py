"""`/v1/webhooks`: create, read, change, delete, secrets and test pings; validation, roles, tenancy."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backplane.app import create_app
from backplane.core.config import Environment, Settings
from backplane.core.netguard import is_public_address
from backplane.events.service import EVENT_TYPES as _KNOWN
from tests.fixtures.assertions import (
    assert_error,
    assert_invalid,
    assert_not_found,
    assert_role_forbidden,
    assert_scope_forbidden,
)
from tests.fixtures.auth import Api
from tests.fixtures.http_server import serve
from tests.webhooks.conftest import Answer, Receiver, bearer, create_webhook, verify_guide

WEBHOOK_NOT_FOUND = "No webhook with this id."
READ_FIELDS = {
    "id",
    "url",
    "events",
    "description",
    "ordering",
    "enabled",
    "disabled_reason",
    "disabled_at",
    "livemode",
    "circuit_state",
    "consecutive_failures",
    "circuit_retry_at",
    "created_at",
    "updated_at",
}
GUIDE_BODY = {
    "url": "https://your-app.com/webhooks/coexai",
    "events": ["job.completed", "job.failed", "subscription.updated"],
    "description": "Production webhook",
}
PRIVATE = "The URL points at a private, loopback or link-local address."


@pytest.fixture
def public_settings(settings: Settings) -> Settings:
    """Deliveries to private addresses refused, as in production."""
    return settings.model_copy(update={"webhook_allow_private_targets": False})


@pytest.fixture
async def public_client(public_settings: Settings) -> Any:
    application = create_app(public_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


# --- create -----------------------------------------------------------------------------------


async def test_create_as_in_the_guide_returns_the_secret(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    response = await client.post("/v1/webhooks", json=GUIDE_BODY, headers=account.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == READ_FIELDS | {"secret"}
    assert created["id"].startswith("wh_") and len(created["id"]) == 27
    assert created["url"] == GUIDE_BODY["url"]
    assert created["events"] == GUIDE_BODY["events"]
    assert created["description"] == "Production webhook"
    assert (created["enabled"], created["disabled_reason"], created["disabled_at"]) == (True, None, None)
    assert created["livemode"] is True
    assert created["ordering"] == "none"  # each event as soon as it can be, unless asked
    assert (created["circuit_state"], created["consecutive_failures"], created["circuit_retry_at"]) == (
        "closed",
        0,
        None,
    )
    assert datetime.fromisoformat(created["created_at"]).tzinfo is not None
    assert created["secret"].startswith("whsec_")
    Webhook(created["secret"])  # a valid Standard Webhooks secret (24 random bytes, base64)
    assert len(created["secret"]) == len("whsec_") + 32

    again = await create_webhook(client, account, GUIDE_BODY["url"], GUIDE_BODY["events"])
    assert again["secret"] != created["secret"]

    fetched = await client.get(f"/v1/webhooks/{created['id']}", headers=account.headers)
    assert fetched.status_code == 200
    assert fetched.json() == {k: v for k, v in created.items() if k != "secret"}
    # Shown once: no later read gives the secret back.
    listed = (await client.get("/v1/webhooks", headers=account.headers)).json()["data"]
    assert all(created["secret"] not in json.dumps(h) for h in listed)
    assert (await client.get(f"/v1/webhooks/{created['id']}/secret", headers=account.headers)).status_code == 404


async def test_events_are_deduplicated_and_a_wildcard_takes_all(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    some = await create_webhook(
        client, account, "https://a.example.com/h", ["job.failed", "job.failed", "job.completed"]
    )
    assert some["events"] == ["job.failed", "job.completed"]
    every = await create_webhook(client, account, "https://a.example.com/h", ["job.failed", "*"])
    assert every["events"] == ["*"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"events": ["job.completed"]}, {"url": ["This field is required."]}),
        ({"url": "https://a.example.com"}, {"events": ["This field is required."]}),
        (
            {"url": "https://a.example.com", "events": []},
            {"events": ["List should have at least 1 item after validation, not 0"]},
        ),
        (
            {"url": "https://a.example.com", "events": ["job.exploded"]},
            {"events.0": ["Input should be " + ", ".join(f"'{t}'" for t in _KNOWN) + " or '*'"]},
        ),
        ({"url": "https://a.example.com", "events": "job.completed"}, {"events": ["Input should be a valid list"]}),
        ({"url": 42, "events": ["*"]}, {"url": ["Input should be a valid string"]}),
        ({"url": "", "events": ["*"]}, {"url": ["String should have at least 1 character"]}),
        (
            {"url": "https://a.example.com/" + "a" * 2048, "events": ["*"]},
            {"url": ["String should have at most 2048 characters"]},
        ),
        (
            {"url": "https://a.example.com", "events": ["*"], "secret": "mine"},
            {"secret": ["Extra inputs are not permitted"]},
        ),
        (
            {"url": "https://a.example.com", "events": ["*"], "description": "x" * 501},
            {"description": ["String should have at most 500 characters"]},
        ),
        (
            {"url": "https://a.example.com", "events": ["*"], "description": "a\x00b"},
            {"description": ["Must not contain NUL (\\u0000) characters."]},
        ),
        ({"url": "ftp://a.example.com/x", "events": ["*"]}, {"url": ["The URL must use http or https."]}),
        ({"url": "not a url", "events": ["*"]}, {"url": ["The URL must use http or https."]}),
        ({"url": "https://", "events": ["*"]}, {"url": ["The URL has no host."]}),
        ({"url": "https://user:pw@a.example.com/", "events": ["*"]}, {"url": ["The URL must not carry credentials."]}),
    ],
)
async def test_create_refuses_bad_input(
    api: Api, raw_client: httpx.AsyncClient, body: dict[str, Any], fields: dict[str, list[str]]
) -> None:
    account = await api.register()
    response = await raw_client.post("/v1/webhooks", json=body, headers=account.headers)
    assert_invalid(response, fields)


async def test_malformed_json_is_a_422(api: Api, raw_client: httpx.AsyncClient) -> None:
    account = await api.register()
    response = await raw_client.post(
        "/v1/webhooks", content=b'{"url": ', headers={**account.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


RESOLVES_PRIVATE = "The URL resolves to a private, loopback or link-local address."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8000/hook", PRIVATE),
        ("http://10.0.0.1/hook", PRIVATE),
        ("http://169.254.169.254/latest/meta-data", PRIVATE),
        ("http://[::1]/hook", PRIVATE),
        ("http://[::ffff:10.0.0.1]/hook", PRIVATE),
        ("http://192.168.1.1/hook", PRIVATE),
        ("http://localhost/hook", PRIVATE),
        ("http://metadata.internal/hook", PRIVATE),
        # A name that is not private by its looks but resolves (here through /etc/hosts) to loopback.
        (f"http://{socket.gethostname()}:8080/hook", RESOLVES_PRIVATE),
    ],
)
async def test_private_targets_are_refused(api: Api, public_client: httpx.AsyncClient, url: str, message: str) -> None:
    account = await api.register()
    response = await public_client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=account.headers)
    assert_invalid(response, {"url": [message]})
    assert (await public_client.get("/v1/webhooks", headers=account.headers)).json()["data"] == []


def test_the_machines_own_name_resolves_privately() -> None:
    """What the case above relies on: the host name resolves, and only to non-public addresses."""
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 9, type=socket.SOCK_STREAM)}
    assert addresses and not any(is_public_address(str(a)) for a in addresses), f"{host} resolves to {addresses}"


async def test_a_name_that_does_not_resolve_yet_is_accepted(api: Api, public_client: httpx.AsyncClient) -> None:
    """Checked again at each delivery: DNS may be set up after the webhook."""
    account = await api.register()
    url = "https://hooks.not-yet.invalid/coexai"
    response = await public_client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=account.headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("livemode", "url", "refusal"),
    [
        (True, "http://hooks.example.invalid/x", ["The URL must use https."]),
        (False, "http://hooks.example.invalid/x", ["The URL must use https."]),
        (True, "https://hooks.example.invalid/x", None),
        (False, "https://hooks.example.invalid/x", None),
    ],
)
async def test_production_webhooks_need_https(
    api: Api, settings: Settings, livemode: bool, url: str, refusal: list[str] | None
) -> None:
    production = settings.model_copy(
        update={"environment": Environment.production, "webhook_allow_private_targets": False}
    )
    application = create_app(production)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            account = await Api(http).register()
            headers = account.headers
            if not livemode:
                headers = bearer(await account.create_key(mode="test", scopes=["admin"]))
            response = await http.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
    if refusal is None:
        assert response.status_code == 201, response.text
        assert response.json()["livemode"] is livemode
    else:
        assert_invalid(response, {"url": refusal})


async def test_an_organization_has_at_most_20_webhooks(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    for n in range(20):
        await create_webhook(client, account, f"https://a.example.com/{n}")
    response = await client.post(
        "/v1/webhooks", json={"url": "https://a.example.com/21", "events": ["*"]}, headers=account.headers
    )
    assert_error(
        response,
        409,
        "WEBHOOK_LIMIT_REACHED",
        "An organization can have at most 20 webhooks; delete one first.",
        {"limit": 20},
    )


# --- roles, scopes, tenancy, modes ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member"])
async def test_only_admins_manage_webhooks(api: Api, client: httpx.AsyncClient, role: str) -> None:
    owner = await api.register()
    hook = await create_webhook(client, owner, "https://a.example.com/h")
    other = await api.register()
    await api.add_member(owner, other, role)
    headers = other.in_org(owner.organization_id)
    for response in (
        await client.post("/v1/webhooks", json=GUIDE_BODY, headers=headers),
        await client.get("/v1/webhooks", headers=headers),
        await client.get(f"/v1/webhooks/{hook['id']}", headers=headers),
        await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=headers),
        await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=headers),
        await client.delete(f"/v1/webhooks/{hook['id']}", headers=headers),
        await client.post(f"/v1/webhooks/{hook['id']}/test", headers=headers),
        await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers),
    ):
        assert_role_forbidden(response, role)


async def test_an_admin_member_manages_them(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    hook = await create_webhook(client, admin.in_org(owner.organization_id), "https://a.example.com/h")
    listed = await client.get("/v1/webhooks", headers=owner.headers)
    assert [h["id"] for h in listed.json()["data"]] == [hook["id"]]


async def test_api_keys_need_the_admin_scope(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    writer = await account.create_key(scopes=["read", "write"])
    assert_scope_forbidden(await client.get("/v1/webhooks", headers=bearer(writer)))
    admin = await account.create_key(scopes=["admin"])
    created = await create_webhook(client, bearer(admin), "https://a.example.com/h")
    assert created["livemode"] is True
    assert created["ordering"] == "none"  # each event as soon as it can be, unless asked


async def test_no_credentials_is_a_401(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/v1/webhooks"),
        401,
        "UNAUTHORIZED",
        "Authentication credentials were not provided. Send `Authorization: Bearer <token>`.",
    )


async def test_another_organizations_webhook_is_not_found(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    hook = await create_webhook(client, owner, "https://a.example.com/h")
    stranger = await api.register()
    base = f"/v1/webhooks/{hook['id']}"
    for response in (
        await client.get(base, headers=stranger.headers),
        await client.post(f"{base}/rotate-secret", headers=stranger.headers),
        await client.patch(base, json={"enabled": False}, headers=stranger.headers),
        await client.delete(base, headers=stranger.headers),
        await client.post(f"{base}/test", headers=stranger.headers),
        await client.get(f"{base}/deliveries", headers=stranger.headers),
        await client.get(f"{base}/deliveries/whd_0123456789abcdef01234567", headers=stranger.headers),
        await client.post(f"{base}/deliveries/whd_0123456789abcdef01234567/redeliver", headers=stranger.headers),
    ):
        assert_not_found(response, WEBHOOK_NOT_FOUND)
    assert (await client.get("/v1/webhooks", headers=stranger.headers)).json()["data"] == []
    still = await client.get(base, headers=owner.headers)
    assert still.json()["enabled"] is True


@pytest.mark.parametrize("webhook_id", ["wh_doesnotexist", "x" * 300, "wh_%00", "1"])
async def test_unknown_ids_are_not_found(api: Api, raw_client: httpx.AsyncClient, webhook_id: str) -> None:
    account = await api.register()
    assert_not_found(await raw_client.get(f"/v1/webhooks/{webhook_id}", headers=account.headers), WEBHOOK_NOT_FOUND)


async def test_test_mode_keys_see_only_test_mode_webhooks(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    test_key = await account.create_key(mode="test", scopes=["admin"])
    live = await create_webhook(client, account, "https://a.example.com/live")
    sandbox = await create_webhook(client, bearer(test_key), "https://a.example.com/test")
    assert sandbox["livemode"] is False
    seen_by_test = await client.get("/v1/webhooks", headers=bearer(test_key))
    assert [h["id"] for h in seen_by_test.json()["data"]] == [sandbox["id"]]
    seen_live = await client.get("/v1/webhooks", headers=account.headers)
    assert [h["id"] for h in seen_live.json()["data"]] == [live["id"]]
    assert_not_found(await client.get(f"/v1/webhooks/{live['id']}", headers=bearer(test_key)), WEBHOOK_NOT_FOUND)


# --- list, update, delete, rotate ---------------------------------------------------------------


async def test_list_is_paginated_newest_first(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    ids = [(await create_webhook(client, account, f"https://a.example.com/{n}"))["id"] for n in range(5)]
    first = (await client.get("/v1/webhooks", params={"limit": 2}, headers=account.headers)).json()
    assert [h["id"] for h in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    assert all("secret" not in h for h in first["data"])
    rest = await client.get(
        "/v1/webhooks", params={"limit": 10, "cursor": first["next_cursor"]}, headers=account.headers
    )
    assert [h["id"] for h in rest.json()["data"]] == ids[::-1][2:]
    assert rest.json()["has_more"] is False
    assert_invalid(
        await client.get("/v1/webhooks", params={"cursor": "garbage!"}, headers=account.headers),
        {"cursor": ["Invalid cursor."]},
    )


async def test_update_changes_only_the_fields_given(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, "https://a.example.com/h", ["job.completed"], description="one")
    path = f"/v1/webhooks/{hook['id']}"
    changed = await client.patch(path, json={"events": ["payment.failed"]}, headers=account.headers)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["events"] == ["payment.failed"]
    assert (body["url"], body["description"], body["enabled"]) == ("https://a.example.com/h", "one", True)
    assert body["updated_at"] > hook["updated_at"]

    changed = await client.patch(
        path, json={"url": "https://b.example.com/x", "description": None, "enabled": False}, headers=account.headers
    )
    body = changed.json()
    assert (body["url"], body["description"], body["enabled"]) == ("https://b.example.com/x", None, False)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": None}, {"url": ["Must not be null; leave the field out to keep it."]}),
        ({"events": None}, {"events": ["Must not be null; leave the field out to keep it."]}),
        ({"enabled": None}, {"enabled": ["Must not be null; leave the field out to keep it."]}),
        ({"events": []}, {"events": ["List should have at least 1 item after validation, not 0"]}),
        ({"enabled": "perhaps"}, {"enabled": ["Input should be a valid boolean, unable to interpret input"]}),
        ({"url": "gopher://x.example.com"}, {"url": ["The URL must use http or https."]}),
        ({"secret": "whsec_mine"}, {"secret": ["Extra inputs are not permitted"]}),
    ],
)
async def test_update_refuses_bad_input(
    api: Api, raw_client: httpx.AsyncClient, body: dict[str, Any], fields: dict[str, list[str]]
) -> None:
    account = await api.register()
    hook = await create_webhook(raw_client, account, "https://a.example.com/h")
    assert_invalid(await raw_client.patch(f"/v1/webhooks/{hook['id']}", json=body, headers=account.headers), fields)
    assert (await raw_client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)).json()["url"] == (
        "https://a.example.com/h"
    )


async def test_update_refuses_a_private_url(api: Api, public_client: httpx.AsyncClient) -> None:
    account = await api.register()
    hook = await create_webhook(public_client, account, "https://a.example.com/h")
    response = await public_client.patch(
        f"/v1/webhooks/{hook['id']}", json={"url": "http://127.0.0.1/x"}, headers=account.headers
    )
    assert_invalid(response, {"url": [PRIVATE]})


async def test_delete_then_it_is_gone(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, "https://a.example.com/h")
    deleted = await client.delete(f"/v1/webhooks/{hook['id']}", headers=account.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_not_found(await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers), WEBHOOK_NOT_FOUND)
    assert_not_found(await client.delete(f"/v1/webhooks/{hook['id']}", headers=account.headers), WEBHOOK_NOT_FOUND)


async def test_rotate_secret(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, "https://a.example.com/h")
    before = datetime.now(UTC)
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=account.headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == {"secret", "previous_secret_expires_at"}
    assert body["secret"].startswith("whsec_") and body["secret"] != hook["secret"]
    Webhook(body["secret"])
    overlap_ends = datetime.fromisoformat(body["previous_secret_expires_at"])
    assert before + timedelta(hours=24) <= overlap_ends <= datetime.now(UTC) + timedelta(hours=24)
    again = (await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=account.headers)).json()
    assert again["secret"] not in (hook["secret"], body["secret"])
    # Neither secret is readable afterwards.
    fetched = (await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)).json()
    assert "secret" not in fetched and again["secret"] not in json.dumps(fetched)


# --- test pings ---------------------------------------------------------------------------------


async def test_a_test_ping_is_signed_sent_and_logged(api: Api, client: httpx.AsyncClient, receiver: Receiver) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url("/webhooks/coexai"), ["job.completed"])
    receiver.answer(Answer(200, b'{"received": true}'))
    response = await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["id"].startswith("whd_")
    assert (result["kind"], result["status"], result["event_type"], result["event_id"]) == (
        "test",
        "succeeded",
        "webhook.test",
        None,
    )
    assert (result["attempt_count"], result["max_attempts"], result["next_attempt_at"]) == (1, 1, None)
    [attempt] = result["attempts"]
    assert (attempt["number"], attempt["succeeded"], attempt["status_code"]) == (1, True, 200)
    assert attempt["response_body"] == '{"received": true}'
    assert attempt["error"] is None

    [request] = receiver.received
    body = request.body.decode()
    assert verify_guide(body, request.headers["x-coexai-signature"], hook["secret"])
    assert Webhook(hook["secret"]).verify(request.body, request.headers) == result["payload"]
    assert request.headers["webhook-id"] == result["id"]
    assert request.headers["x-coexai-event"] == "webhook.test"
    assert request.headers["content-type"] == "application/json"
    sent = json.loads(body)
    assert sent["event"] == sent["type"] == "webhook.test"
    assert sent["webhook_id"] == hook["id"]
    assert sent["data"]["id"] == result["id"]

    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=account.headers)
    assert [d["id"] for d in listed.json()["data"]] == [result["id"]]
    detail = await client.get(f"/v1/webhooks/{hook['id']}/deliveries/{result['id']}", headers=account.headers)
    assert detail.json() == result


async def test_a_failed_test_ping_says_why(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url(), enabled=False)  # works while disabled too
    receiver.answer(Answer(500, b"boom" * 1000))
    result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert result["status"] == "failed"
    assert result["last_status_code"] == 500
    [attempt] = result["attempts"]
    assert attempt["status_code"] == 500
    assert attempt["error"] == "The endpoint answered HTTP 500; only 2xx counts as delivered."
    assert attempt["response_body"] == ("boom" * 1000)[:2048]

    receiver.answer(Answer(302, headers={"Location": "http://127.0.0.1:1/elsewhere"}))
    redirected = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert redirected["status"] == "failed"
    assert redirected["attempts"][0]["error"] == (
        "The endpoint answered HTTP 302, a redirect to http://127.0.0.1:1/elsewhere; redirects are not followed."
    )
    assert len(receiver.received) == 2  # the redirect was not followed


async def test_a_test_ping_to_nothing_listening(api: Api, client: httpx.AsyncClient, dead_port: int) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, f"http://127.0.0.1:{dead_port}/h")
    result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert result["status"] == "failed"
    assert result["last_status_code"] is None
    assert result["attempts"][0]["error"].startswith("Could not connect")


async def test_a_slow_endpoint_times_out(api: Api, receiver: Receiver, settings: Settings) -> None:
    impatient = settings.model_copy(update={"webhook_timeout_seconds": 0.3})
    application: FastAPI = create_app(impatient)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            account = await Api(client).register()
            hook = await create_webhook(client, account, receiver.url())
            receiver.answer(Answer(200, delay=3))
            result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert result["status"] == "failed"
    assert result["attempts"][0]["error"] == "Timed out after 0.3 s."
    assert result["attempts"][0]["status_code"] is None


async def test_a_test_ping_holds_no_transaction_while_it_waits(
    api: Api, client: httpx.AsyncClient, database_url: str
) -> None:
    """While the receiver takes its time, no connection of the API sits idle in a transaction."""
    seen: list[int] = []

    async def handle(request: Request) -> Response:
        connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            seen.append(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            )
        finally:
            await connection.close()
        return Response("ok")

    account = await api.register()
    with serve(Starlette(routes=[Route("/h", handle, methods=["POST"])]), name="slow-ping-receiver") as server:
        hook = await create_webhook(client, account, f"{server.url}/h")
        result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert result["status"] == "succeeded", result
    assert seen == [0]
    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=account.headers)
    assert [d["id"] for d in listed.json()["data"]] == [result["id"]]  # logged in the second transaction
