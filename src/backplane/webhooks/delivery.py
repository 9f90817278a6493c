"""From an event in the outbox to a signed POST, with retries (the worker's side of webhooks).

1. `dispatch`: every few seconds the oldest undispatched events become one delivery per endpoint that
   subscribes to them (same organization, same mode, active); each delivery's first attempt is
   queued once the transaction commits.
2. `attempt`: one attempt of one delivery. A short transaction claims it (the lease keeps a duplicate
   job away while the request runs), the request is sent outside any transaction, a second
   transaction logs the attempt and decides: delivered, retry later (queued with the delay of the
   schedule), or failed for good.
3. `sweep`: a delivery whose queued job was lost (Redis flushed, a worker killed mid-attempt) is
   queued again once it is overdue. Job ids name the delivery and the attempt number, so queueing
   twice runs once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core.config import Settings
from backplane.core.db import unit_of_work
from backplane.core.queue import enqueue_after_commit
from backplane.events.models import Event
from backplane.events.repository import claim_undispatched
from backplane.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backplane.webhooks.repository import active_endpoints_of, lock_delivery, lock_for_attempt, overdue
from backplane.webhooks.sender import AttemptResult, send
from backplane.webhooks.signing import TEST_EVENT, encode_body, payload, signed_headers

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
# Waits after the 1st, 2nd, 3rd and 4th failed attempt: attempts at 0, 5 min, 30 min, 2 h and 6 h.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
DISPATCH_BATCH = 100
SWEEP_BATCH = 500
SWEEP_GRACE = timedelta(minutes=2)  # overdue by this much before a delivery counts as lost
EARLY_TOLERANCE = timedelta(seconds=5)  # clocks of API and worker hosts differ a little


def new_delivery_id() -> str:
    return "whd_" + secrets.token_hex(12)


def job_id(delivery_id: str, number: int) -> str:
    return f"{DELIVER_TASK}:{delivery_id}:{number}"


def attempt_lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhook_timeout_seconds + 30)


def new_delivery(endpoint: WebhookEndpoint, *, kind: str, event: Event | None, now: datetime) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_delivery_id(),
        organization_id=endpoint.organization_id,
        endpoint_id=endpoint.id,
        event_id=event.id if event else None,
        event_type=event.type if event else TEST_EVENT,
        livemode=endpoint.livemode,
        kind=kind,
        status="pending",
        attempt_count=0,
        max_attempts=MAX_ATTEMPTS if kind == "event" else 1,
        next_attempt_at=now,
        created_at=now,
    )


def schedule(session: AsyncSession, queue: ArqRedis, delivery: WebhookDelivery) -> None:
    """Queue the delivery's next attempt for `next_attempt_at`, once the transaction commits."""
    enqueue_after_commit(
        session,
        queue,
        DELIVER_TASK,
        delivery.id,
        _job_id=job_id(delivery.id, delivery.attempt_count + 1),
        _defer_until=delivery.next_attempt_at,
    )


def ping_data(delivery: WebhookDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "message": "A test event from Backplane: this endpoint receives webhooks."}


def payload_of(delivery: WebhookDelivery, endpoint: WebhookEndpoint, event: Event | None) -> dict[str, Any]:
    """The JSON body of the delivery, the same on every attempt."""
    if event is None:  # a `webhook.test` ping
        return payload(TEST_EVENT, delivery.created_at, endpoint.id, ping_data(delivery))
    return payload(event.type, event.created_at, endpoint.id, event.data)


def build_request(
    delivery: WebhookDelivery, endpoint: WebhookEndpoint, event: Event | None, sent_at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and its headers, signed at `sent_at`. `webhook-id` is the event id (a ping's own id),
    so that a receiver sees retries and redeliveries of one event as one message."""
    body = encode_body(payload_of(delivery, endpoint, event))
    headers = signed_headers(
        endpoint.secret,
        body,
        message_id=event.id if event is not None else delivery.id,
        sent_at=sent_at,
        event_type=delivery.event_type,
        delivery_id=delivery.id,
    )
    return body, headers


def apply_result(
    delivery: WebhookDelivery, number: int, result: AttemptResult, attempted_at: datetime
) -> WebhookAttempt:
    """Log attempt `number` and move the delivery on: delivered, due again later, or failed for good."""
    attempt = WebhookAttempt(
        delivery_id=delivery.id,
        number=number,
        attempted_at=attempted_at,
        succeeded=result.succeeded,
        status_code=result.status_code,
        response_body=result.response_body,
        error=result.error,
        duration_ms=result.duration_ms,
    )
    delivery.attempt_count = number
    delivery.last_attempt_at = attempted_at
    delivery.last_status_code = result.status_code
    if result.succeeded:
        delivery.status, delivery.next_attempt_at = "succeeded", None
    elif number >= delivery.max_attempts:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.status, delivery.next_attempt_at = "pending", attempted_at + RETRY_DELAYS[number - 1]
    logger.info(
        "webhook delivery %s (%s) attempt %d/%d: %s%s",
        delivery.id,
        delivery.event_type,
        number,
        delivery.max_attempts,
        "delivered" if result.succeeded else (result.error or "failed"),
        f"; next attempt at {delivery.next_attempt_at.isoformat()}" if delivery.next_attempt_at else "",
    )
    return attempt


async def dispatch(session: AsyncSession, queue: ArqRedis, now: datetime, limit: int = DISPATCH_BATCH) -> int:
    """Turn up to `limit` undispatched events into deliveries; the number of events handled."""
    events = await claim_undispatched(session, limit)
    if not events:
        return 0
    endpoints = await active_endpoints_of(session, {event.organization_id for event in events})
    for event in events:
        for endpoint in endpoints:
            if (
                endpoint.organization_id == event.organization_id
                and endpoint.livemode == event.livemode
                and endpoint.wants(event.type)
            ):
                delivery = new_delivery(endpoint, kind="event", event=event, now=now)
                session.add(delivery)
                schedule(session, queue, delivery)
        event.dispatched_at = now
    await session.flush()
    return len(events)


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: str
    number: int
    url: str
    body: bytes
    headers: dict[str, str]


async def _claim(session: AsyncSession, settings: Settings, delivery_id: str, now: datetime) -> _Claim | None:
    found = await lock_for_attempt(session, delivery_id)
    if found is None:
        return None  # deleted with its endpoint, or another worker is on it
    delivery, endpoint, event = found
    if delivery.status != "pending":
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY_TOLERANCE:
        return None  # not due: a stale job, or an attempt in progress holds the lease
    if not endpoint.is_active:
        delivery.status, delivery.next_attempt_at = "failed", None
        return None
    body, headers = build_request(delivery, endpoint, event, now)
    delivery.next_attempt_at = now + attempt_lease(settings)
    return _Claim(delivery.id, delivery.attempt_count + 1, endpoint.url, body, headers)


async def attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: ArqRedis,
    client: httpx.AsyncClient,
    settings: Settings,
    delivery_id: str,
    *,
    now: datetime,
) -> str | None:
    """One attempt of a due delivery; its status afterwards, or None when there was nothing to do."""
    async with unit_of_work(sessionmaker) as session:
        claim = await _claim(session, settings, delivery_id, now)
    if claim is None:
        return None
    result = await send(client, claim.url, claim.body, claim.headers, settings=settings)
    async with unit_of_work(sessionmaker) as session:
        delivery = await lock_delivery(session, delivery_id)
        if delivery is None:
            return None  # its endpoint was deleted while the request ran
        session.add(apply_result(delivery, claim.number, result, now))
        if delivery.status == "pending":
            schedule(session, queue, delivery)
        await session.flush()
        return delivery.status


async def sweep(session: AsyncSession, queue: ArqRedis, now: datetime) -> int:
    """Queue again the deliveries overdue by SWEEP_GRACE; how many were not queued any more."""
    requeued = 0
    for delivery_id, attempts in await overdue(session, now - SWEEP_GRACE, SWEEP_BATCH):
        if await queue.enqueue_job(DELIVER_TASK, delivery_id, _job_id=job_id(delivery_id, attempts + 1)):
            requeued += 1
    if requeued:
        logger.warning("requeued %d overdue webhook deliveries", requeued)
    return requeued
