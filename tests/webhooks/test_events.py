"""`/v1/events`: list and get, filters, pagination, modes, roles and tenancy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from backplane.core.config import Settings
from backplane.events.service import EVENT_TYPES as _KNOWN
from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Api
from tests.webhooks.conftest import bearer, record

EVENT_NOT_FOUND = "No event with this id."
EVENT_TYPES = ", ".join(f"'{t}'" for t in _KNOWN[:-1]) + f" or '{_KNOWN[-1]}'"  # as pydantic lists them


async def test_events_are_listed_newest_first_and_read_one_by_one(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    ids = [
        await record(settings, account.organization_id, "job.completed", {"id": f"job_{n}", "score": 0.5})
        for n in range(3)
    ]
    listed = await client.get("/v1/events", headers=account.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [e["id"] for e in body["data"]] == ids[::-1]
    assert (body["has_more"], body["next_cursor"]) == (False, None)
    newest = body["data"][0]
    assert set(newest) == {"id", "type", "data", "livemode", "created_at"}
    assert (newest["type"], newest["data"], newest["livemode"]) == (
        "job.completed",
        {"id": "job_2", "score": 0.5},
        True,
    )

    one = await client.get(f"/v1/events/{ids[0]}", headers=account.headers)
    assert one.status_code == 200
    assert one.json() == body["data"][-1]


async def test_pagination_and_type_filter(api: Api, client: httpx.AsyncClient, settings: Settings) -> None:
    account = await api.register()
    for n in range(3):
        await record(settings, account.organization_id, "job.failed", {"id": f"job_{n}"})
    paid = await record(settings, account.organization_id, "payment.succeeded", {"invoice_id": "in_1"})
    page = (await client.get("/v1/events", params={"limit": 3}, headers=account.headers)).json()
    assert page["has_more"] is True
    rest = (await client.get("/v1/events", params={"cursor": page["next_cursor"]}, headers=account.headers)).json()
    assert len(page["data"]) + len(rest["data"]) == 4
    assert not {e["id"] for e in page["data"]} & {e["id"] for e in rest["data"]}

    only = await client.get("/v1/events", params={"type": "payment.succeeded"}, headers=account.headers)
    assert [e["id"] for e in only.json()["data"]] == [paid]


async def test_filters_by_type_and_time_combine_and_paginate(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    ids: list[str] = []
    for n in range(6):
        ids.append(await record(settings, account.organization_id, "job.failed" if n % 2 else "job.completed", {}))
    listed = (await client.get("/v1/events", headers=account.headers)).json()["data"]
    created = {e["id"]: e["created_at"] for e in listed}
    stamps = [created[i] for i in ids]  # oldest first
    assert len(set(stamps)) == 6

    def ids_of(body: dict[str, Any]) -> list[str]:
        return [e["id"] for e in body["data"]]

    # Both bounds are exclusive.
    window = {"created_after": stamps[1], "created_before": stamps[5]}
    between = (await client.get("/v1/events", params=window, headers=account.headers)).json()
    assert ids_of(between) == [ids[4], ids[3], ids[2]]
    failed = (await client.get("/v1/events", params={**window, "type": "job.failed"}, headers=account.headers)).json()
    assert ids_of(failed) == [ids[3]]
    after = (await client.get("/v1/events", params={"created_after": stamps[3]}, headers=account.headers)).json()
    assert ids_of(after) == [ids[5], ids[4]]
    before = (await client.get("/v1/events", params={"created_before": stamps[1]}, headers=account.headers)).json()
    assert ids_of(before) == [ids[0]]

    # Pages of a filtered list, the filters sent again with the cursor.
    query = {"created_after": stamps[0], "type": "job.completed", "limit": 1}
    seen: list[str] = []
    cursor = None
    while True:
        page = (
            await client.get(
                "/v1/events", params={**query, **({"cursor": cursor} if cursor else {})}, headers=account.headers
            )
        ).json()
        seen += ids_of(page)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [ids[4], ids[2]]

    # Another timezone is the same moment.
    utc = datetime.fromisoformat(stamps[3])
    shifted = utc.astimezone(timezone(timedelta(hours=-5))).isoformat()
    same = (await client.get("/v1/events", params={"created_after": shifted}, headers=account.headers)).json()
    assert ids_of(same) == [ids[5], ids[4]]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"type": "job.exploded"}, {"type": [f"Input should be {EVENT_TYPES}"]}),
        (
            {"created_after": "yesterday"},
            {"created_after": ["Input should be a valid datetime or date, input is too short"]},
        ),
        ({"created_before": "2024-01-15T10:30:00"}, {"created_before": ["Input should have timezone info"]}),
        ({"created_after": "0001-01-01T00:00:00+05:00"}, {"created_after": ["Datetime is out of range."]}),
        (
            {"created_before": "2024-13-01T00:00:00Z"},
            {
                "created_before": [
                    "Input should be a valid datetime or date, month value is outside expected range of 1-12"
                ]
            },
        ),
        ({"limit": 0}, {"limit": ["Input should be greater than or equal to 1"]}),
        ({"limit": 101}, {"limit": ["Input should be less than or equal to 100"]}),
        ({"cursor": "bm90IGEgY3Vyc29y"}, {"cursor": ["Invalid cursor."]}),
        (
            {"delivery_success": "maybe"},
            {"delivery_success": ["Input should be a valid boolean, unable to interpret input"]},
        ),
    ],
)
async def test_bad_parameters_are_a_422(
    api: Api, raw_client: httpx.AsyncClient, params: dict[str, Any], fields: dict[str, list[str]]
) -> None:
    account = await api.register()
    assert_invalid(await raw_client.get("/v1/events", params=params, headers=account.headers), fields)


async def test_every_role_reads_events_but_only_its_own_organizations(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await api.register()
    event_id = await record(settings, owner.organization_id, "job.completed", {"id": "job_1"})
    viewer = await api.register()
    await api.add_member(owner, viewer, "viewer")
    as_viewer = await client.get(f"/v1/events/{event_id}", headers=viewer.in_org(owner.organization_id))
    assert as_viewer.status_code == 200
    read_key = await owner.create_key(scopes=["read"])
    listed = await client.get("/v1/events", params={"type": "job.completed"}, headers=bearer(read_key))
    assert listed.json()["data"][0]["id"] == event_id  # (keys and members make events of their own)

    # The viewer's own organization, and a stranger's, do not see it.
    assert_not_found(await client.get(f"/v1/events/{event_id}", headers=viewer.headers), EVENT_NOT_FOUND)
    stranger = await api.register()
    assert_not_found(await client.get(f"/v1/events/{event_id}", headers=stranger.headers), EVENT_NOT_FOUND)
    assert (await client.get("/v1/events", headers=stranger.headers)).json()["data"] == []


@pytest.mark.parametrize("event_id", ["evt_unknown", "evt_" + "0" * 24, "x" * 500, "evt_%00"])
async def test_unknown_ids_are_not_found(api: Api, raw_client: httpx.AsyncClient, event_id: str) -> None:
    account = await api.register()
    assert_not_found(await raw_client.get(f"/v1/events/{event_id}", headers=account.headers), EVENT_NOT_FOUND)


async def test_test_mode_keys_see_test_mode_events_only(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    live = await record(settings, account.organization_id, "job.completed", {"id": "job_live"})
    sandbox = await record(settings, account.organization_id, "job.completed", {"id": "job_test"}, livemode=False)
    test_key = await account.create_key(mode="test", scopes=["read"])
    seen = await client.get("/v1/events", params={"type": "job.completed"}, headers=bearer(test_key))
    assert [(e["id"], e["livemode"]) for e in seen.json()["data"]] == [(sandbox, False)]
    assert_not_found(await client.get(f"/v1/events/{live}", headers=bearer(test_key)), EVENT_NOT_FOUND)
    jobs = {"type": "job.completed"}  # (the test key's own api_key.created is a test-mode event too)
    assert [e["id"] for e in (await client.get("/v1/events", params=jobs, headers=account.headers)).json()["data"]] == [
        live
    ]


async def test_no_credentials_is_a_401(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/v1/events"),
        401,
        "UNAUTHORIZED",
        "Authentication credentials were not provided. Send `Authorization: Bearer <token>`.",
    )
