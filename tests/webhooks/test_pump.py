"""The worker's pump: first attempts claimed, sent and logged in batches, each delivery still once."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.util
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.webhooks import delivery as flow
from backplane.webhooks import pump as pump_module
from backplane.webhooks.pump import Pump
from backplane.webhooks.sender import AttemptResult
from backplane.webhooks.slots import EndpointSlots
from backplane.webhooks.tasks import _slots, dispatch_task
from tests.fixtures.auth import Account, Api
from tests.fixtures.sql import engine_statements
from tests.webhooks.conftest import (
    Answer,
    Receiver,
    at,
    create_webhook,
    detail,
    eventually,
    queued_jobs,
    record,
    worker_context,
)


async def all_deliveries(client: httpx.AsyncClient, account: Account, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


class HandedOver:
    """Where a dispatch hands its new deliveries when no slot is to be had (`delivery.FirstAttempts` that
    claims nothing): the (delivery id, endpoint id) pairs, collected once its transaction commits."""

    encryptor: Any = None  # nothing is signed: nothing is claimed

    def __init__(self, handed: list[tuple[str, str]]) -> None:
        self.handed = handed

    async def take(self, wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return []

    async def start(self, claims: list[flow.Claim], rest: list[tuple[str, str]]) -> None:
        assert claims == []
        self.handed.extend(rest)


def pump_of(ctx: dict[str, Any]) -> Pump:
    return Pump(ctx["sessionmaker"], ctx["redis"], ctx["settings"], ctx["encryptor"], _slots(ctx))


async def test_two_pumps_handed_the_same_deliveries_send_each_once(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hooks = [await create_webhook(client, account, receiver.url(f"/{n}")) for n in range(2)]
    event_ids = [await record(settings, account.organization_id, "job.completed", {"n": n}) for n in range(30)]
    async with worker_context(settings) as one, worker_context(settings) as two:
        handed: list[tuple[str, str]] = []
        async with unit_of_work(one["sessionmaker"]) as session:
            assert await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed)) == 30
        assert len(handed) == 60
        assert await queued_jobs(one["redis"]) == {}  # handed over, not queued
        pumps = [pump_of(one), pump_of(two)]
        for pump in pumps:
            pump.start()
        try:
            for pump in pumps:
                pump.submit(list(handed))  # two workers, the same deliveries

            async def all_logged() -> bool:
                found = [await all_deliveries(client, account, hook) for hook in hooks]
                return all(len(f) == 30 and {d["status"] for d in f} == {"succeeded"} for f in found)

            await eventually(all_logged, "every delivery logged")
        finally:
            for pump in pumps:
                await pump.stop()
    sent = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
    assert sent == {(path, event_id): 1 for path in ("/0", "/1") for event_id in event_ids}
    for hook in hooks:
        assert {d["attempt_count"] for d in await all_deliveries(client, account, hook)} == {1}


async def test_a_stopping_pump_queues_what_it_has_not_started(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    await create_webhook(client, account, receiver.url())
    for n in range(3):
        await record(settings, account.organization_id, "job.completed", {"n": n})
    async with worker_context(settings) as ctx:
        handed: list[tuple[str, str]] = []
        async with unit_of_work(ctx["sessionmaker"]) as session:
            await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed))
        pump = pump_of(ctx)  # never started: the worker stops before it got to them
        pump.submit(handed)
        await pump.stop()
        assert set(await queued_jobs(ctx["redis"])) == {flow.job_id(delivery_id, 1) for delivery_id, _ in handed}
    assert receiver.received == []


async def test_a_delivery_whose_pump_died_holding_its_slot_is_sent_once_that_lease_ends(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """A worker killed between taking a delivery's slot and claiming it leaves the slot to its lease. The
    sweep hands the delivery to the next worker's pump every few seconds meanwhile; those hand-overs must
    not renew the dead worker's lease, or the delivery waits for ever (seen in the fault run)."""
    account = await api.register()
    await create_webhook(client, account, receiver.url())
    event_id = await record(settings, account.organization_id, "job.completed", {"n": 1})
    async with worker_context(settings) as ctx:
        handed: list[tuple[str, str]] = []
        async with unit_of_work(ctx["sessionmaker"]) as session:
            await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed))
        slots = EndpointSlots(ctx["redis"], limit=settings.webhook_endpoint_concurrency, lease_seconds=1.0)
        assert await slots.acquire_many(handed) == handed  # the dead worker's pump: taken, never given back
        pump = Pump(ctx["sessionmaker"], ctx["redis"], ctx["settings"], ctx["encryptor"], slots)
        pump.start()
        try:

            async def sent() -> bool:
                pump.submit(list(handed))  # the sweep, again and again, as long as the delivery is overdue
                await asyncio.sleep(0.2)
                return [r.headers["webhook-id"] for r in receiver.received] == [event_id]

            await eventually(sent, "the delivery sent once the dead worker's slot lease ended", within=10)
        finally:
            await pump.stop()


async def test_a_batch_of_delivered_attempts_is_logged_in_one_statement_after_the_endpoint_locks(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    for n in range(20):
        await record(settings, account.organization_id, "job.completed", {"n": n})
    async with worker_context(settings) as ctx:
        handed: list[tuple[str, str]] = []
        async with unit_of_work(ctx["sessionmaker"]) as session:
            await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed))
        claims = await flow.claim(ctx["sessionmaker"], settings, ctx["encryptor"], [d for d, _ in handed], utcnow())
        assert len(claims) == 20
        answers = [
            (claim, AttemptResult(succeeded=True, status_code=200, response_body="ok", error=None, duration_ms=3))
            for claim in claims
        ]
        with engine_statements(ctx["engine"]) as statements:
            statuses = await flow.record_outcomes(ctx["sessionmaker"], ctx["redis"], settings, answers)
    assert statuses == {claim.delivery_id: "succeeded" for claim in claims}
    # The endpoint's lock, then the attempts and the statuses together; nothing per delivery.
    assert len(statements) == 2, statements
    logged = await all_deliveries(client, account, hook)
    assert {(d["status"], d["attempt_count"]) for d in logged} == {("succeeded", 1)}
    assert len(logged) == 20
    attempts = await detail(client, account, hook, claims[0].delivery_id)
    assert [(a["number"], a["succeeded"], a["status_code"]) for a in attempts["attempts"]] == [(1, True, 200)]


async def test_answers_that_come_moments_apart_are_logged_in_one_transaction(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event for two endpoints is sent to both at once; their answers come a few milliseconds apart
    (seen: every paced event logged in two transactions, one per answer). The log waits that long for
    the attempts still under way, so that both go into one transaction.

    Here the answers come 50 ms apart and the wait is widened to a second. With the real 5 ms and 2 ms
    apart, a loaded suite (two test processes on two cores) once handled the second answer later than
    the wait, and the test failed on the timing, not the behaviour. With no wait (0 s) it fails."""
    monkeypatch.setattr(pump_module, "LOG_GATHER_SECONDS", 1.0)
    account = await api.register()
    hooks = [await create_webhook(client, account, receiver.url(f"/{n}")) for n in range(2)]
    receiver.answer_on("/1", Answer(delay=0.05))
    await record(settings, account.organization_id, "job.completed", {"n": 1})
    async with worker_context(settings) as ctx:
        handed: list[tuple[str, str]] = []
        async with unit_of_work(ctx["sessionmaker"]) as session:
            await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed))
        pump = pump_of(ctx)
        with engine_statements(ctx["engine"]) as statements:
            pump.start()
            try:
                pump.submit(handed)

                async def both_logged() -> bool:
                    found = [await all_deliveries(client, account, hook) for hook in hooks]
                    return [[d["status"] for d in f] for f in found] == [["succeeded"], ["succeeded"]]

                await eventually(both_logged, "both deliveries logged")
            finally:
                await pump.stop()
    endpoint_locks = [s for s in statements if "FROM webhook_endpoints" in s and "FOR NO KEY UPDATE" in s]
    assert len(endpoint_locks) == 1, endpoint_locks


async def test_dispatching_a_batch_of_events_takes_three_statements_whatever_its_size(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hooks = [await create_webhook(client, account, receiver.url(f"/{n}")) for n in range(2)]
    for n in range(20):
        await record(settings, account.organization_id, "job.completed", {"n": n})
    async with worker_context(settings) as ctx:
        handed: list[tuple[str, str]] = []
        with engine_statements(ctx["engine"]) as statements:
            async with unit_of_work(ctx["sessionmaker"]) as session:
                assert await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed)) == 20
        # The events claimed and marked, the endpoints read, the deliveries inserted: none per row.
        assert len(statements) == 3, statements
        assert [s for s in statements if s.startswith("EXECUTEMANY")] == []
        async with unit_of_work(ctx["sessionmaker"]) as session:
            assert await flow.dispatch(session, settings, utcnow(), first=HandedOver(handed)) == 0
    assert len(handed) == 40
    for hook in hooks:
        found = await all_deliveries(client, account, hook)
        assert sorted(d["id"] for d in found) == sorted(d for d, e in handed if e == hook["id"])
        assert {(d["status"], d["attempt_count"]) for d in found} == {("pending", 0)}


def test_httpcore_finds_sniffio_so_that_a_request_does_not_search_the_path_for_it() -> None:
    """httpcore imports `sniffio` inside every lock and event it sets up, and anyio no longer brings it
    (encode/httpcore#1103): missing, each import fails anew, a search of sys.path several times per
    webhook attempt (7.6% of the worker's CPU in a burst, measured with py-spy)."""
    from httpcore._synchronization import current_async_library

    assert importlib.util.find_spec("sniffio") is not None
    misses: list[str] = []

    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> None:
            misses.append(name)

    finder = Watch()
    sys.meta_path.insert(0, finder)
    try:
        assert asyncio.run(_library(current_async_library)) == "asyncio"
    finally:
        sys.meta_path.remove(finder)
    assert misses == []  # found in sys.modules: no finder asked


async def _library(detect: Callable[[], str]) -> str:
    return detect()


def _claims(statements: list[str]) -> list[str]:
    """`claim`'s locking read of deliveries (what a delivery claimed by its dispatch never needs)."""
    return [s for s in statements if s.lstrip().startswith("SELECT webhook_deliveries.id") and "SKIP LOCKED" in s]


async def test_a_new_delivery_whose_endpoint_has_a_free_slot_is_claimed_by_its_dispatch(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """The dispatch that makes a delivery claims it in the same transaction (inserted with its first
    attempt's lease) when its endpoint has a slot free, and the pump sends it after the commit: no
    claim transaction of its own (seen: a third of a paced event's CPU in the worker)."""
    account = await api.register()
    hooks = [await create_webhook(client, account, receiver.url(f"/{n}")) for n in range(2)]
    event_ids = [await record(settings, account.organization_id, "job.completed", {"n": n}) for n in range(3)]
    async with worker_context(settings) as ctx:
        pump = ctx["webhook_pump"] = pump_of(ctx)
        pump.start()
        try:
            with engine_statements(ctx["engine"]) as statements:
                assert await dispatch_task(ctx) == 3

                async def all_logged() -> bool:
                    found = [await all_deliveries(client, account, hook) for hook in hooks]
                    return all(len(f) == 3 and {d["status"] for d in f} == {"succeeded"} for f in found)

                await eventually(all_logged, "every delivery logged")
        finally:
            await pump.stop()
        assert await queued_jobs(ctx["redis"]) == {}
        assert [await ctx["redis"].zcard(keys.webhook_slots(hook["id"])) for hook in hooks] == [0, 0]
    assert _claims(statements) == []
    sent = Counter((r.path, r.headers["webhook-id"]) for r in receiver.received)
    assert sent == {(path, event_id): 1 for path in ("/0", "/1") for event_id in event_ids}
    for hook in hooks:
        found = await all_deliveries(client, account, hook)
        assert {d["attempt_count"] for d in found} == {1}
        attempts = await detail(client, account, hook, found[0]["id"])
        assert [(a["number"], a["succeeded"]) for a in attempts["attempts"]] == [(1, True)]


async def _one_event_for_one_webhook(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> tuple[Account, dict[str, Any]]:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", {"n": 1})
    return account, hook


@asynccontextmanager
async def _started_pump(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> AsyncIterator[tuple[Account, dict[str, Any], dict[str, Any], Pump]]:
    """One event for one webhook, and a started pump in a worker's context (the test stops it)."""
    account, hook = await _one_event_for_one_webhook(api, client, receiver, settings)
    async with worker_context(settings) as ctx:
        pump = pump_of(ctx)
        pump.start()
        yield account, hook, ctx, pump


async def test_a_new_delivery_whose_endpoint_is_full_is_not_claimed_by_its_dispatch_and_waits(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account, hook = await _one_event_for_one_webhook(api, client, receiver, settings)
    async with worker_context(settings) as ctx:
        slots = _slots(ctx)
        busy = [(f"whd_busy{n}", hook["id"]) for n in range(slots.limit)]
        assert await slots.acquire_many(busy) == busy  # other attempts under way hold every slot
        pump = ctx["webhook_pump"] = pump_of(ctx)
        pump.start()
        try:
            assert await dispatch_task(ctx) == 1
            (made,) = await all_deliveries(client, account, hook)

            async def waiting() -> bool:  # for a slot, as a delivery handed over to the pump does
                found = await ctx["redis"].zrange(keys.webhook_waiting(hook["id"]), 0, -1)
                return bool(found == [made["id"].encode()])

            await eventually(waiting, "the delivery waiting for a slot")
        finally:
            await pump.stop()
    assert (made["status"], made["attempt_count"]) == ("pending", 0)
    assert at(made["next_attempt_at"]) <= utcnow()  # due, not leased: `claim` takes it once it has a slot
    assert receiver.received == []


async def test_a_dispatch_whose_transaction_fails_gives_back_the_slots_it_took(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    async with _started_pump(api, client, receiver, settings) as (account, hook, ctx, pump):
        try:
            taken = keys.webhook_slots(hook["id"])
            with pytest.raises(RuntimeError, match="the commit failed"):
                async with pump.first_attempts() as first, unit_of_work(ctx["sessionmaker"]) as session:
                    assert await flow.dispatch(session, settings, utcnow(), first=first) == 1
                    assert await ctx["redis"].zcard(taken) == 1  # its slot, taken before the rows exist
                    raise RuntimeError("the commit failed")

            async def given_back() -> bool:
                return await ctx["redis"].zcard(taken) == 0 and pump.idle()

            await eventually(given_back, "the slot given back")
        finally:
            await pump.stop()
    assert await all_deliveries(client, account, hook) == []
    assert receiver.received == []


async def test_a_dispatch_that_cannot_reach_the_slots_still_makes_its_deliveries_unclaimed(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, dead_port: int
) -> None:
    """Redis away when the dispatch asks for slots: the deliveries are made all the same, due and not
    leased, and handed over as before (here to a pump that stops at once and queues them as jobs)."""
    account, hook = await _one_event_for_one_webhook(api, client, receiver, settings)
    async with worker_context(settings) as ctx:
        unreachable = Redis.from_url(f"redis://127.0.0.1:{dead_port}/0", socket_connect_timeout=1)
        try:
            slots = EndpointSlots(unreachable, limit=settings.webhook_endpoint_concurrency, lease_seconds=60)
            pump = Pump(ctx["sessionmaker"], ctx["redis"], settings, ctx["encryptor"], slots)
            async with pump.first_attempts() as first, unit_of_work(ctx["sessionmaker"]) as session:
                assert await flow.dispatch(session, settings, utcnow(), first=first) == 1
            (made,) = await all_deliveries(client, account, hook)
            assert (made["status"], made["attempt_count"]) == ("pending", 0)
            assert at(made["next_attempt_at"]) <= utcnow()  # due: whoever gets a slot claims it
            await pump.stop()
        finally:
            await unreachable.aclose()
        assert set(await queued_jobs(ctx["redis"])) == {flow.job_id(made["id"], 1)}
    assert receiver.received == []


async def test_a_pump_stopping_while_a_dispatch_commits_sends_and_logs_what_that_dispatch_claimed(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """The worker shuts down between a dispatch's claim of a first attempt and its commit: the pump's
    stop waits for that commit, then sends and logs the attempt (it left it leased and unsent, for
    the sweep to find once the lease ended)."""
    async with _started_pump(api, client, receiver, settings) as (account, hook, ctx, pump):
        async with pump.first_attempts() as first, unit_of_work(ctx["sessionmaker"]) as session:
            assert await flow.dispatch(session, settings, utcnow(), first=first) == 1
            stopping = asyncio.create_task(pump.stop())
            await asyncio.sleep(0.3)
            assert not stopping.done()  # waiting for this dispatch
        await stopping
        (made,) = await all_deliveries(client, account, hook)
        assert (made["status"], made["attempt_count"]) == ("succeeded", 1)
        assert await queued_jobs(ctx["redis"]) == {}
        assert await ctx["redis"].zcard(keys.webhook_slots(hook["id"])) == 0


async def test_a_dispatch_after_its_pump_stopped_queues_its_deliveries(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    async with _started_pump(api, client, receiver, settings) as (account, hook, ctx, pump):
        await pump.stop()
        async with pump.first_attempts() as first, unit_of_work(ctx["sessionmaker"]) as session:
            assert await flow.dispatch(session, settings, utcnow(), first=first) == 1
        (made,) = await all_deliveries(client, account, hook)
        assert (made["status"], made["attempt_count"]) == ("pending", 0)  # not claimed: the pump is gone
        assert set(await queued_jobs(ctx["redis"])) == {flow.job_id(made["id"], 1)}
    assert receiver.received == []


async def test_a_dispatch_committing_after_its_pump_stopped_leaves_its_claims_to_the_sweep_unsent(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop gave up waiting for the dispatch: what it claimed is not sent then, since no one would
    log the answer and the sweep would send it again once its lease ended; its slot goes back."""
    monkeypatch.setattr(pump_module, "DISPATCH_WAIT_SECONDS", 0.1)
    async with _started_pump(api, client, receiver, settings) as (account, hook, ctx, pump):
        async with pump.first_attempts() as first, unit_of_work(ctx["sessionmaker"]) as session:
            assert await flow.dispatch(session, settings, utcnow(), first=first) == 1
            await pump.stop()
        (made,) = await all_deliveries(client, account, hook)
        assert (made["status"], made["attempt_count"]) == ("pending", 0)
        assert at(made["next_attempt_at"]) > utcnow()  # leased: the sweep's once the lease ends
        assert await queued_jobs(ctx["redis"]) == {}
        assert await ctx["redis"].zcard(keys.webhook_slots(hook["id"])) == 0
        await asyncio.sleep(0.3)
    assert receiver.received == []
