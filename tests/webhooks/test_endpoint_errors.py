"""The error answers of `/v1/webhooks` and `/v1/events`, route by route, each with its exact body.

One table per concern: malformed input (bodies, query parameters, ids in the path), another
organization's ids (404, never 403), a role or an API key scope that does not allow the route (403),
and the order of those checks. The cases already pinned in test_endpoints.py, test_events.py and
test_delivery.py are not repeated.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backplane.core.config import Settings
from backplane.events.service import EVENT_TYPES as _KNOWN
from tests.fixtures.assertions import (
    assert_error,
    assert_invalid,
    assert_not_found,
    assert_role_forbidden,
    assert_scope_forbidden,
)
from tests.fixtures.auth import Account, Api
from tests.webhooks.conftest import Receiver, bearer, create_webhook, record

WEBHOOK_NOT_FOUND = "No webhook with this id."
DELIVERY_NOT_FOUND = "No delivery with this id."
EVENT_NOT_FOUND = "No event with this id."
ORG_NOT_FOUND = "Organization not found."
NO_CREDENTIALS = "Authentication credentials were not provided. Send `Authorization: Bearer <token>`."
NOT_JSON = "The request body is not valid JSON: Expecting value."
NUL_TEXT = "Text must not contain NUL (\\u0000) characters."
REQUIRED = "This field is required."
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"
EVENT_TYPES = "Input should be " + ", ".join(f"'{t}'" for t in _KNOWN) + " or '*'"  # every type, then '*'
JSON = {"Content-Type": "application/json"}
UNKNOWN_DELIVERY = "whd_0123456789abcdef01234567"
URL = "https://a.example.com/h"

# Every webhook route, by name: (method, path with `{hook}` and `{delivery}`, request options).
ROUTES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "create": ("POST", "/v1/webhooks", {"json": {"url": URL, "events": ["*"]}}),
    "list": ("GET", "/v1/webhooks", {}),
    "get": ("GET", "/v1/webhooks/{hook}", {}),
    "update": ("PATCH", "/v1/webhooks/{hook}", {"json": {"description": "changed"}}),
    "delete": ("DELETE", "/v1/webhooks/{hook}", {}),
    "rotate-secret": ("POST", "/v1/webhooks/{hook}/rotate-secret", {}),
    "test": ("POST", "/v1/webhooks/{hook}/test", {}),
    "deliveries": ("GET", "/v1/webhooks/{hook}/deliveries", {}),
    "delivery": ("GET", "/v1/webhooks/{hook}/deliveries/{delivery}", {}),
    "redeliver": ("POST", "/v1/webhooks/{hook}/deliveries/{delivery}/redeliver", {}),
}
ONE_WEBHOOK = [name for name, (_, path, _) in ROUTES.items() if "{hook}" in path]
EVENT_ROUTES = {"events": "/v1/events", "event": "/v1/events/{event}"}


async def send(
    client: httpx.AsyncClient,
    route: str,
    headers: dict[str, str],
    hook: str = "wh_unused",
    delivery: str = UNKNOWN_DELIVERY,
) -> httpx.Response:
    method, path, options = ROUTES[route]
    return await client.request(method, path.format(hook=hook, delivery=delivery), headers=headers, **options)


async def member_of(api: Api, owner: Account, role: str) -> dict[str, str]:
    account = await api.register()
    await api.add_member(owner, account, role)
    return account.in_org(owner.organization_id)


@pytest.fixture
async def owner(api: Api) -> Account:
    return await api.register()


@pytest.fixture
async def hook(raw_client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await create_webhook(raw_client, owner, URL)


# --- (a) malformed input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "webhook_id",
    [
        pytest.param("wh_%00", id="nul"),
        pytest.param("x" * 300, id="too-long"),
        pytest.param("1", id="number"),
        pytest.param("WH_0123456789ABCDEF01234567", id="upper-case"),
        pytest.param("wh_" + "0" * 24, id="well-formed-unknown"),
    ],
)
@pytest.mark.parametrize("route", [r for r in ONE_WEBHOOK if r != "get"])  # GET: test_endpoints.py
async def test_a_malformed_webhook_id_is_not_found(
    raw_client: httpx.AsyncClient, owner: Account, route: str, webhook_id: str
) -> None:
    assert_not_found(await send(raw_client, route, owner.headers, hook=webhook_id), WEBHOOK_NOT_FOUND)


@pytest.mark.parametrize(
    "delivery_id",
    [
        pytest.param("whd_%00", id="nul"),
        pytest.param("x" * 300, id="too-long"),
        pytest.param("1", id="number"),
        pytest.param("whd_" + "0" * 24, id="well-formed-unknown"),
    ],
)
@pytest.mark.parametrize("route", ["delivery", "redeliver"])
async def test_a_malformed_delivery_id_is_not_found(
    raw_client: httpx.AsyncClient, owner: Account, hook: dict[str, Any], route: str, delivery_id: str
) -> None:
    response = await send(raw_client, route, owner.headers, hook=hook["id"], delivery=delivery_id)
    assert_not_found(response, DELIVERY_NOT_FOUND)


@pytest.mark.parametrize(
    ("route", "content", "message", "fields"),
    [
        pytest.param("create", b'{"url": ', NOT_JSON, None, id="create-truncated"),
        pytest.param("create", b"{'url': 'x'}", "The request body is not valid JSON: Expecting property name "
                     "enclosed in double quotes.", None, id="create-single-quotes"),
        pytest.param("create", b"", None, {"non_field_errors": [REQUIRED]}, id="create-empty"),
        pytest.param("create", b"[1]", None, {"non_field_errors": [NOT_AN_OBJECT]}, id="create-array"),
        pytest.param("create", b"null", None, {"non_field_errors": [NOT_AN_OBJECT]}, id="create-null"),
        pytest.param("update", b'{"url": ', NOT_JSON, None, id="update-truncated"),
        pytest.param("update", b"", None, {"non_field_errors": [REQUIRED]}, id="update-empty"),
        pytest.param("update", b"[1]", None, {"non_field_errors": [NOT_AN_OBJECT]}, id="update-array"),
        pytest.param("update", b'{"url": 1}', None, {"url": ["Input should be a valid string"]}, id="update-url-int"),
        pytest.param("update", b'{"events": [1]}', None, {"events.0": [EVENT_TYPES]}, id="update-event-int"),
        pytest.param(
            "update", b'{"events": "*"}', None, {"events": ["Input should be a valid list"]}, id="update-events-str"
        ),
        pytest.param(
            "update",
            b'{"description": 5}',
            None,
            {"description": ["Input should be a valid string"]},
            id="update-description-int",
        ),
        pytest.param(
            "update",
            b'{"description": "' + b"x" * 501 + b'"}',
            None,
            {"description": ["String should have at most 500 characters"]},
            id="update-description-long",
        ),
        pytest.param(
            "update",
            b'{"url": "https://a.example.com/\\u0000"}',
            None,
            {"url": ["Must not contain NUL (\\u0000) characters."]},
            id="update-url-nul",
        ),
        pytest.param(
            "create",
            b'{"url": "https://a.example.com", "events": ["*"], "description": 5}',
            None,
            {"description": ["Input should be a valid string"]},
            id="create-description-int",
        ),
        pytest.param(
            "create",
            b'{"url": "https://a.example.com", "events": ["*"], "enabled": "perhaps"}',
            None,
            {"enabled": ["Input should be a valid boolean, unable to interpret input"]},
            id="create-enabled-str",
        ),
    ],
)  # fmt: skip
async def test_malformed_bodies_are_refused(
    raw_client: httpx.AsyncClient,
    owner: Account,
    hook: dict[str, Any],
    route: str,
    content: bytes,
    message: str | None,
    fields: dict[str, list[str]] | None,
) -> None:
    method, path, _ = ROUTES[route]
    response = await raw_client.request(
        method, path.format(hook=hook["id"]), content=content, headers={**owner.headers, **JSON}
    )
    if fields is None:
        assert message is not None
        assert_error(response, 422, "VALIDATION_ERROR", message)
    else:
        assert_invalid(response, fields)
    unchanged = await raw_client.get(f"/v1/webhooks/{hook['id']}", headers=owner.headers)
    assert unchanged.json() == {k: v for k, v in hook.items() if k != "secret"}


@pytest.mark.parametrize(
    ("route", "params", "fields"),
    [
        ("list", {"limit": 0}, {"limit": ["Input should be greater than or equal to 1"]}),
        ("list", {"limit": 101}, {"limit": ["Input should be less than or equal to 100"]}),
        ("list", {"limit": "ten"}, {"limit": [NOT_AN_INTEGER]}),
        ("list", {"cursor": "x" * 201}, {"cursor": ["String should have at most 200 characters"]}),
        ("deliveries", {"status": "lost"}, {"status": ["Input should be 'pending', 'succeeded' or 'failed'"]}),
        ("deliveries", {"event_id": "e" * 65}, {"event_id": ["String should have at most 64 characters"]}),
        # The error names the parameter that carried the NUL (today: `non_field_errors`).
        ("deliveries", {"event_id": "evt_\x00"}, {"event_id": ["String should match pattern '^evt_[0-9a-f]+$'"]}),
        ("deliveries", {"limit": 0}, {"limit": ["Input should be greater than or equal to 1"]}),
        ("deliveries", {"cursor": "garbage!"}, {"cursor": ["Invalid cursor."]}),
        ("deliveries", {"cursor": "x" * 201}, {"cursor": ["String should have at most 200 characters"]}),
    ],
)  # fmt: skip
async def test_bad_query_parameters_are_refused(
    raw_client: httpx.AsyncClient,
    owner: Account,
    hook: dict[str, Any],
    route: str,
    params: dict[str, Any],
    fields: dict[str, list[str]],
) -> None:
    method, path, _ = ROUTES[route]
    response = await raw_client.request(method, path.format(hook=hook["id"]), params=params, headers=owner.headers)
    assert_invalid(response, fields)


# --- (b) another organization's ids ---------------------------------------------------------------


@pytest.mark.parametrize("route", ONE_WEBHOOK)
async def test_another_organizations_admin_key_gets_404(
    raw_client: httpx.AsyncClient, api: Api, owner: Account, hook: dict[str, Any], route: str
) -> None:
    """test_endpoints.py covers a stranger's JWT; an admin API key of another organization answers alike."""
    stranger = await api.register()
    key = await stranger.create_key(scopes=["read", "write", "admin"])
    assert_not_found(await send(raw_client, route, bearer(key), hook=hook["id"]), WEBHOOK_NOT_FOUND)
    still = await raw_client.get(f"/v1/webhooks/{hook['id']}", headers=owner.headers)
    assert still.json() == {k: v for k, v in hook.items() if k != "secret"}


@pytest.mark.parametrize("route", ["delivery", "redeliver"])
async def test_another_organizations_delivery_is_not_found_under_ones_own_webhook(
    raw_client: httpx.AsyncClient, api: Api, owner: Account, receiver: Receiver, route: str
) -> None:
    theirs = await create_webhook(raw_client, owner, receiver.url())
    ping = await raw_client.post(f"/v1/webhooks/{theirs['id']}/test", headers=owner.headers)
    assert ping.status_code == 200, ping.text
    stranger = await api.register()
    mine = await create_webhook(raw_client, stranger, receiver.url("/mine"))
    response = await send(raw_client, route, stranger.headers, hook=mine["id"], delivery=ping.json()["id"])
    assert_not_found(response, DELIVERY_NOT_FOUND)


@pytest.mark.parametrize("route", ["event", "events-filtered"])
async def test_another_organizations_event_is_not_found_with_an_api_key(
    raw_client: httpx.AsyncClient, api: Api, owner: Account, settings: Settings, route: str
) -> None:
    event_id = await record(settings, owner.organization_id, "job.completed", {"id": "job_1"})
    stranger = await api.register()
    key = bearer(await stranger.create_key(scopes=["read"]))
    if route == "event":
        assert_not_found(await raw_client.get(f"/v1/events/{event_id}", headers=key), EVENT_NOT_FOUND)
    else:
        listed = await raw_client.get("/v1/events", params={"type": "job.completed"}, headers=key)
        assert (listed.status_code, listed.json()["data"]) == (200, [])


@pytest.mark.parametrize("route", [*ROUTES, *EVENT_ROUTES])
async def test_acting_in_an_organization_one_is_not_a_member_of_is_404(
    raw_client: httpx.AsyncClient, api: Api, owner: Account, hook: dict[str, Any], route: str
) -> None:
    """Another organization's id in X-Organization-ID (a malformed one: tests/auth/test_platform_auth.py)."""
    stranger = await api.register()
    headers = owner.in_org(stranger.organization_id)
    if route in EVENT_ROUTES:
        response = await raw_client.get(EVENT_ROUTES[route].format(event="evt_" + "0" * 24), headers=headers)
    else:
        response = await send(raw_client, route, headers, hook=hook["id"])
    assert_not_found(response, ORG_NOT_FOUND)


# --- (c) roles and scopes -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member"])
@pytest.mark.parametrize("route", ["delivery", "redeliver"])  # the other routes: test_endpoints.py
async def test_only_admins_read_and_redeliver_deliveries(
    raw_client: httpx.AsyncClient, api: Api, owner: Account, hook: dict[str, Any], route: str, role: str
) -> None:
    headers = await member_of(api, owner, role)
    assert_role_forbidden(await send(raw_client, route, headers, hook=hook["id"]), role)


@pytest.mark.parametrize("scopes", [["read", "write"]])
@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_webhook_route_needs_the_admin_scope(
    raw_client: httpx.AsyncClient, owner: Account, hook: dict[str, Any], route: str, scopes: list[str]
) -> None:
    key = bearer(await owner.create_key(scopes=scopes))
    assert_scope_forbidden(await send(raw_client, route, key, hook=hook["id"]), "admin")
    unchanged = await raw_client.get(f"/v1/webhooks/{hook['id']}", headers=owner.headers)
    assert unchanged.json() == {k: v for k, v in hook.items() if k != "secret"}


@pytest.mark.parametrize("scopes", [["write"], ["admin"], ["write", "admin"]])
@pytest.mark.parametrize("route", list(EVENT_ROUTES))
async def test_events_need_the_read_scope(
    raw_client: httpx.AsyncClient, owner: Account, settings: Settings, route: str, scopes: list[str]
) -> None:
    event_id = await record(settings, owner.organization_id, "job.completed", {"id": "job_1"})
    key = bearer(await owner.create_key(scopes=scopes))
    response = await raw_client.get(EVENT_ROUTES[route].format(event=event_id), headers=key)
    assert_scope_forbidden(response, "read")


# --- who the caller is comes before what they sent ------------------------------------------------


@pytest.mark.parametrize("route", [*ROUTES, *EVENT_ROUTES])
async def test_no_credentials_is_a_401_everywhere(raw_client: httpx.AsyncClient, route: str) -> None:
    if route in EVENT_ROUTES:
        response = await raw_client.get(EVENT_ROUTES[route].format(event="evt_" + "0" * 24))
    else:
        response = await send(raw_client, route, {}, hook="wh_" + "0" * 24)
    assert_error(response, 401, "UNAUTHORIZED", NO_CREDENTIALS)
    assert response.headers["WWW-Authenticate"] == "Bearer"
