"""arq tasks of webhooks. The worker keeps one HTTP client for deliveries in `ctx["webhook_http"]`, the
Encryptor that decrypts signing secrets in `ctx["encryptor"]`, and, beside the listener, the `Pump`
that makes the first attempts of new deliveries in `ctx["webhook_pump"]`."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from redis.asyncio import Redis

from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.logs import log_context
from backplane.core.queue import enqueue
from backplane.events.service import NEW_EVENTS_KEY
from backplane.webhooks import delivery
from backplane.webhooks.pump import Pump
from backplane.webhooks.slots import EndpointSlots, Outcome, waiting_key
from backplane.workers.context import session_scope
from backplane.workers.resilience import stores_of

logger = logging.getLogger(__name__)

LISTEN_BLOCK_SECONDS = 1  # below the Redis client's socket timeout (3 s)
CHAIN_SECONDS = 30.0  # how long one job goes on with the waiting deliveries of its endpoint


def _slots(ctx: dict[str, Any]) -> EndpointSlots:
    """Built once per worker (its scripts registered once), on the first delivery."""
    slots: EndpointSlots | None = ctx.get("webhook_slots")
    if slots is None:
        settings: Settings = ctx["settings"]
        slots = ctx["webhook_slots"] = EndpointSlots(
            ctx["redis"],
            limit=settings.webhook_endpoint_concurrency,
            lease_seconds=delivery.attempt_lease(settings).total_seconds(),
            breaker_failures=settings.webhook_breaker_failures,
            breaker_backoff_seconds=settings.webhook_breaker_backoff_seconds,
        )
    return slots


async def deliver_task(ctx: dict[str, Any], delivery_id: str, endpoint_id: str | None = None) -> str | None:
    """`webhooks.deliver`: one attempt of one delivery (queued by dispatch, by a retry or a redelivery).

    A worker that runs a `Pump` hands the delivery to it. Otherwise:

    With `endpoint_id` (every job queued by this version) the attempt first takes one of the
    endpoint's slots; when they are all taken it waits in the endpoint's waiting set instead of in
    this worker. When an attempt ends, the job hands its slot straight to the delivery that waited
    longest and makes that attempt too (for up to CHAIN_SECONDS; after that the waiter gets a job of
    its own), so a busy endpoint's slots never sit idle between queue polls.
    """
    if endpoint_id is None:
        return await _attempt(ctx, delivery_id)
    pump: Pump | None = ctx.get("webhook_pump")
    if pump is not None:
        pump.submit([(delivery_id, endpoint_id)])  # the worker's pump makes every attempt it can
        return "pumped"
    slots = _slots(ctx)
    if not await slots.acquire(endpoint_id, delivery_id):
        return "waiting"
    started = time.monotonic()
    current: str | None = delivery_id
    status: str | None = None
    while current is not None:
        ended_well = False
        outcome: str | None = None
        try:
            outcome = await _attempt(ctx, current)
            ended_well = True
        finally:
            released = await slots.release(endpoint_id, current, _outcome_of(outcome))
            if released.opened:
                await delivery.queue_probes(ctx["redis"], released.opened)
            woken = [w for w, _ in released.woken]
            chained = None
            if (
                ended_well
                and woken
                and time.monotonic() - started < CHAIN_SECONDS
                and await slots.acquire(endpoint_id, woken[0])
            ):
                chained = woken.pop(0)
            for other in woken:
                await _wake(ctx, other, endpoint_id)
        if current == delivery_id:
            status = outcome
        current = chained
    return status


def _outcome_of(status: str | None) -> Outcome:
    """What an attempt's resulting status says of its endpoint: delivered, failed (to be retried or
    for good), or no attempt made (None: not due, held by another, deleted)."""
    if status is None:
        return "-"
    return "ok" if status == "succeeded" else "fail"


async def probe_task(ctx: dict[str, Any], endpoint_id: str) -> str | None:
    """`webhooks.probe`: the back-off of an endpoint's open breaker has ended, its breaker was closed by a
    successful ping, or the sweep found its waiters overdue. The deliveries that waited longest are
    handed to the pump: while the breaker is open only the first gets a slot (the probe, alone) and the
    others keep their place; once closed, as many as there are free slots."""
    slots = _slots(ctx)
    oldest = [
        found.decode() if isinstance(found, bytes) else str(found)
        for found in await ctx["redis"].zrange(waiting_key(endpoint_id), 0, slots.limit - 1)
    ]
    if not oldest:
        return None  # nothing waits: the endpoint's next delivery is the probe
    pump: Pump | None = ctx.get("webhook_pump")
    if pump is not None:
        pump.submit([(delivery_id, endpoint_id) for delivery_id in oldest])
        return "pumped"
    return await deliver_task(ctx, oldest[0], endpoint_id)


async def _attempt(ctx: dict[str, Any], delivery_id: str) -> str | None:
    with log_context(delivery_id=delivery_id):
        return await delivery.attempt(
            ctx["sessionmaker"],
            ctx["redis"],
            ctx["webhook_http"],
            ctx["settings"],
            ctx["encryptor"],
            delivery_id,
            now=utcnow(),
        )


async def _wake(ctx: dict[str, Any], delivery_id: str, endpoint_id: str) -> None:
    """A job of its own for a waiting delivery. Its own job id too: the waiter's first job may not
    have finished yet. A duplicate does nothing (the attempt's claim in PostgreSQL is what counts)."""
    await enqueue(
        ctx["redis"],
        delivery.DELIVER_TASK,
        delivery_id,
        endpoint_id,
        _job_id=f"{delivery.DELIVER_TASK}:{delivery_id}:woken:{secrets.token_hex(4)}",
    )


async def dispatch_task(ctx: dict[str, Any]) -> int:
    """Cron `webhooks.dispatch`: new events become deliveries, in batches of one transaction each.

    In a worker with a pump the first attempts go to it, and dispatching pauses while its backlog is
    long (the rest stays in the outbox for the next round, or for another worker)."""
    pump: Pump | None = ctx.get("webhook_pump")
    total = 0
    while True:
        if pump is not None and not await pump.room():
            return total
        if pump is None:
            async with session_scope(ctx) as session:
                handled = await delivery.dispatch(session, ctx["settings"], utcnow())
        else:
            async with pump.first_attempts() as first, session_scope(ctx) as session:
                handled = await delivery.dispatch(session, ctx["settings"], utcnow(), first=first)
        total += handled
        if handled < delivery.DISPATCH_BATCH:
            return total


async def sweep_task(ctx: dict[str, Any]) -> int:
    """Cron `webhooks.sweep`: deliveries whose queued attempt was lost are queued again."""
    async with session_scope(ctx) as session:
        return await delivery.sweep(session, ctx["redis"], utcnow(), delivery.sweep_grace(ctx["settings"]))


async def listen_for_events(ctx: dict[str, Any], stopping: asyncio.Event) -> None:
    """Dispatch as soon as a transaction that recorded events has committed, not at the next cron.

    `record_event` pushes onto NEW_EVENTS_KEY after its transaction commits, and the list never
    holds more than one entry: popping it before dispatching loses nothing, since an event whose push
    came before the pop had committed before it, so the dispatch sees it, and a later push wakes the
    next round (at most one round more than needed; deleting the list after the pop, as this did,
    saved that round at the cost of a round trip on every wake). Several workers may listen; SKIP
    LOCKED keeps their dispatches apart. Runs until `stopping` is set (a dispatch under way finishes
    first); any error is logged and the loop goes on (the cron still dispatches meanwhile).
    """
    redis: Redis = ctx["redis_app"]
    while not stopping.is_set():
        try:
            if await redis.blpop([NEW_EVENTS_KEY], timeout=LISTEN_BLOCK_SECONDS) is None:  # type: ignore[misc]
                continue
            await dispatch_task(ctx)
        except Exception as error:
            if not stores_of(ctx).noticed(error):
                logger.exception("dispatching new events failed; the cron will pick them up")
            await asyncio.sleep(1)


def start_listening(ctx: dict[str, Any]) -> None:
    """The listener, and the pump that makes the first attempts of what it dispatches."""
    pump = ctx["webhook_pump"] = Pump(ctx["sessionmaker"], ctx["redis"], ctx["settings"], ctx["encryptor"], _slots(ctx))
    pump.start()
    stopping = asyncio.Event()
    ctx["webhook_listener_task"] = (
        asyncio.create_task(listen_for_events(ctx, stopping), name="webhooks.listen"),
        stopping,
    )


async def stop_listening(ctx: dict[str, Any]) -> None:
    """Stop the listener after its current round (at most a few seconds), else cancel it."""
    found: tuple[asyncio.Task[None], asyncio.Event] | None = ctx.pop("webhook_listener_task", None)
    if found is None:
        return
    task, stopping = found
    stopping.set()
    try:
        await asyncio.wait_for(task, timeout=LISTEN_BLOCK_SECONDS + 10)
    except TimeoutError:
        logger.warning("the webhook listener did not stop in time; cancelled")
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        pump: Pump | None = ctx.pop("webhook_pump", None)
        if pump is not None:
            await pump.stop()
