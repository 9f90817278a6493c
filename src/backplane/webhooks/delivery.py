"""From an event in the outbox to a signed POST, with retries (the worker's side of webhooks).

1. `dispatch`: the oldest undispatched events become one delivery per endpoint that subscribes to
   them (same organization, same mode, enabled); once the transaction commits, each delivery's
   first attempt goes to the worker's `Pump` (claimed by the dispatch itself, in its transaction,
   where the endpoint has a slot free), or is queued as a job where no pump runs. It runs as
   soon as a transaction that recorded events commits (`listen`, woken through Redis by
   `events.service.record_event`), and every 5 s as a cron, the safety net.
2. `claim`, `send`, `record_outcomes`: attempts, in batches. A short transaction claims a batch of
   deliveries (the lease keeps a duplicate job away while the requests run), the requests are sent
   outside any transaction, a second transaction logs the attempts and decides for each: delivered,
   retry later (queued for its time in the schedule), or failed for good. The worker's `Pump`
   (pump.py) makes the first attempts of what `dispatch` made this way; `attempt` is one attempt
   of one delivery (a retry's or a redelivery's `webhooks.deliver` job). The endpoint's health
   follows: 410 Gone, or failing every attempt for WEBHOOK_DISABLE_AFTER_SECONDS, disables it and
   emails the organization's owners.
3. `sweep`: a delivery whose queued job was lost (Redis restarted empty, a worker killed
   mid-attempt) is queued again once it is overdue by a third of RECOVERY_SECONDS and Redis knows
   it neither as a queued job nor as waiting for a slot of its endpoint. Job ids name the delivery
   and the attempt number, so queueing twice runs once.

Retries are due WEBHOOK_RETRY_SCHEDULE_SECONDS after the first attempt (5 min, 30 min, 2 h, 6 h by
default), each a little later at random (up to WEBHOOK_RETRY_JITTER of its wait) so that retries
after an outage do not all arrive at once. A receiver's Retry-After may push a retry later (never
sooner, by at most RETRY_AFTER_CAP), and the retries after it move with it.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

import aiohttp
import httpx
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core import metrics, tracing
from backplane.core.config import Settings
from backplane.core.crypto import DecryptionFailed, Encryptor
from backplane.core.db import unit_of_work, utcnow
from backplane.core.effects import effects
from backplane.core.email import SEND_EMAIL
from backplane.core.ids import new_id
from backplane.core.queue import DEFAULT_QUEUE, enqueue
from backplane.events.models import Event
from backplane.events.repository import claim_undispatched
from backplane.events.resources import resource_of
from backplane.webhooks import ordering, repository
from backplane.webhooks.models import JobWebhookSecret, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backplane.webhooks.repository import (
    active_endpoints_of,
    insert_deliveries,
    lease_deliveries,
    lock_deliveries,
    lock_endpoints,
    lock_for_attempt,
    overdue,
)
from backplane.webhooks.sender import AttemptResult, send
from backplane.webhooks.signing import (
    TEST_EVENT,
    encode_body,
    iso_timestamp,
    job_payload,
    new_secret,
    payload,
    signed_headers,
)
from backplane.webhooks.slots import Pair, forget, reset_breaker, waiting_key

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
PROBE_TASK = "webhooks.probe"
DISPATCH_BATCH = 100
SWEEP_BATCH = 500
# Of one endpoint (or one job's webhook URL) in a sweep's batch: deliveries parked behind a dead endpoint's open
# circuit are overdue too, and thousands of them must not fill the batch and hide others' lost ones.
SWEEP_PER_ENDPOINT = 50
EARLY_TOLERANCE = timedelta(seconds=5)  # clocks of API and worker hosts differ a little
RETRY_AFTER_CAP = timedelta(hours=24)  # a receiver's Retry-After delays one retry by at most this
SECRET_OVERLAP = timedelta(hours=24)  # a rotated-out secret keeps signing this long


def retry_offsets(settings: Settings) -> tuple[timedelta, ...]:
    """When each retry is due, after the first attempt (before jitter and Retry-After)."""
    return tuple(timedelta(seconds=s) for s in settings.webhook_retry_schedule_seconds)


def max_attempts(settings: Settings) -> int:
    return len(settings.webhook_retry_schedule_seconds) + 1


def new_delivery_id() -> str:
    return new_id("whd")


def job_id(delivery_id: str, number: int) -> str:
    return f"{DELIVER_TASK}:{delivery_id}:{number}"


def attempt_lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhook_timeout_seconds + 30)


def new_delivery(
    endpoint: WebhookEndpoint, settings: Settings, *, kind: str, event: Event | None, now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(**delivery_values(endpoint, settings, kind=kind, event=event, now=now))


def delivery_values(
    endpoint: WebhookEndpoint, settings: Settings, *, kind: str, event: Event | None, now: datetime
) -> dict[str, Any]:
    """A new delivery's columns (`dispatch` inserts them in bulk, without an ORM object each)."""
    return {
        "resource_id": resource_of(event.type, event.data) if event is not None else None,
        "id": new_delivery_id(),
        "organization_id": endpoint.organization_id,
        "endpoint_id": endpoint.id,
        "event_id": event.id if event else None,
        "event_type": event.type if event else TEST_EVENT,
        "livemode": endpoint.livemode,
        "kind": kind,
        "status": "pending",
        "attempt_count": 0,
        "max_attempts": max_attempts(settings) if kind == "event" else 1,
        "next_attempt_at": now,
        "created_at": now,
        # Its attempts continue the event's trace; a redelivery's or a ping's, the request's that asked.
        "trace_context": event.trace_context if kind == "event" and event is not None else tracing.carrier(),
    }


def target_of(delivery: WebhookDelivery) -> str:
    """Whose slots an attempt takes (slots.py): its endpoint's, or for a job's own webhook its URL's host
    (`jobhook:<host>`), so that many jobs pointing at one receiver share its cap."""
    if delivery.endpoint_id is not None:
        return delivery.endpoint_id
    return job_target(delivery.url or "")


def job_target(url: str) -> str:
    return "jobhook:" + (httpx.URL(url).host or "-")[:200]


def schedule(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Queue the delivery's next attempt for `next_attempt_at`, once the transaction commits."""
    _queue_attempt(session, delivery.id, target_of(delivery), delivery.attempt_count + 1, delivery.next_attempt_at)


def _queue_attempt(session: AsyncSession, delivery_id: str, target: str, number: int, due: datetime | None) -> None:
    effects(session).enqueue(
        DELIVER_TASK,
        delivery_id,
        target,
        _job_id=job_id(delivery_id, number),
        _defer_until=due,
        _queue_name=DEFAULT_QUEUE,  # also from the jobs worker, whose own queue is another
    )


def wake(session: AsyncSession, delivery_id: str, target: str) -> None:
    """Queue an attempt of a delivery that waited for an earlier one (ordering.py), once the transaction
    commits, under a job id of its own (its first attempt's id may still be known to arq)."""
    effects(session).enqueue(
        DELIVER_TASK,
        delivery_id,
        target,
        _job_id=f"{DELIVER_TASK}:{delivery_id}:ordered:{secrets.token_hex(4)}",
        _queue_name=DEFAULT_QUEUE,
    )


async def queue_probes(queue: ArqRedis, opened: dict[str, datetime]) -> None:
    """A `webhooks.probe` job for each endpoint whose breaker opened, due when its back-off ends."""
    for endpoint_id, until in opened.items():
        logger.warning(
            "webhook %s: its attempts keep failing; its deliveries wait until %s (circuit breaker open)",
            endpoint_id,
            until.isoformat(),
        )
        await enqueue(
            queue,
            PROBE_TASK,
            endpoint_id,
            _job_id=f"{PROBE_TASK}:{endpoint_id}:{int(until.timestamp() * 1000)}",
            _defer_until=until,
            _queue_name=DEFAULT_QUEUE,
        )


async def close_circuit(queue: ArqRedis, endpoint_id: str) -> None:
    """Close the endpoint's breaker, if it was open, and have what waited for it sent now (a successful
    `webhook.test` ping says the receiver is back)."""
    if await reset_breaker(queue, endpoint_id):
        await enqueue(
            queue,
            PROBE_TASK,
            endpoint_id,
            _job_id=f"{PROBE_TASK}:{endpoint_id}:closed:{secrets.token_hex(4)}",
            _queue_name=DEFAULT_QUEUE,
        )


def close_circuit_once_committed(session: AsyncSession, endpoint_id: str) -> None:
    """`close_circuit` after the transaction commits: the endpoint now posts to another receiver (a new
    URL), or was enabled again, so the failures its breaker counted say nothing about what comes next."""
    queue = effects(session).queue

    async def _close() -> None:
        if queue is None:
            raise RuntimeError("this unit of work has no task queue")
        await close_circuit(queue, endpoint_id)

    effects(session).call(_close, "closing the webhook's circuit")


def forget_endpoint_once_committed(session: AsyncSession, endpoint_id: str) -> None:
    """A deleted endpoint's Redis keys (slots, waiting set, breaker) go once the deletion commits."""
    redis = effects(session).redis

    async def _forget() -> None:
        if redis is None:
            raise RuntimeError("this unit of work has no Redis")
        await forget(redis, endpoint_id)

    effects(session).call(_forget, "forgetting the webhook's circuit")


class JobTarget:
    """What a job's own webhook delivery goes to: the URL the job named, signed with its organization's
    job-webhook secret (`GET /v1/webhooks/default/secret`). It has no health to track."""

    enabled = True
    failing_since: datetime | None = None
    ordered = False

    def __init__(self, delivery: WebhookDelivery, secret_encrypted: str) -> None:
        self.id = target_of(delivery)
        self.url = delivery.url or ""
        self._secret_encrypted = secret_encrypted

    def signing_secrets(self, encryptor: Encryptor, now: datetime) -> list[str]:
        return [encryptor.decrypt_text(self._secret_encrypted)]


async def job_secret(session: AsyncSession, encryptor: Encryptor, organization_id: Any, livemode: bool) -> str:
    """The organization's job-webhook secret for this mode (encrypted), made on first use: whichever of
    a claim and `GET /v1/webhooks/default/secret` comes first makes it, and both then read the same."""
    await session.execute(
        pg_insert(JobWebhookSecret)
        .values(
            organization_id=organization_id,
            livemode=livemode,
            secret_encrypted=encryptor.encrypt_text(new_secret()),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "livemode"])
    )
    stored = await session.scalar(
        select(JobWebhookSecret.secret_encrypted).where(
            JobWebhookSecret.organization_id == organization_id, JobWebhookSecret.livemode == livemode
        )
    )
    assert stored is not None
    return stored


Target = WebhookEndpoint | JobTarget


def ping_data(delivery: WebhookDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "message": "A test event from Backplane: this endpoint receives webhooks."}


def payload_of(delivery: WebhookDelivery, endpoint: Target, event: Event | None) -> dict[str, Any]:
    """The JSON body of the delivery, the same on every attempt."""
    if delivery.kind == "job":  # a job's own webhook: no endpoint id to name
        return job_payload(delivery)
    if event is None:  # a `webhook.test` ping
        return payload(TEST_EVENT, delivery.created_at, endpoint.id, ping_data(delivery))
    return payload(event.type, event.created_at, endpoint.id, event.data)


def build_request(
    delivery: WebhookDelivery, endpoint: Target, event: Event | None, sent_at: datetime, encryptor: Encryptor
) -> tuple[bytes, dict[str, str]]:
    """The body and its headers, signed at `sent_at` (the only place the endpoint's secrets are
    decrypted). `webhook-id` is the event id (a ping's own id), so that a receiver sees retries and
    redeliveries of one event as one message."""
    message_id = event.id if event is not None else delivery.id
    return _signed(
        payload_of(delivery, endpoint, event),
        endpoint,
        message_id,
        delivery.event_type,
        delivery.id,
        sent_at,
        encryptor,
    )


def _signed(
    data: dict[str, Any],
    endpoint: Target,
    message_id: str,
    event_type: str,
    delivery_id: str,
    sent_at: datetime,
    encryptor: Encryptor,
) -> tuple[bytes, dict[str, str]]:
    body = encode_body(data)
    headers = signed_headers(
        endpoint.signing_secrets(encryptor, sent_at),
        body,
        message_id=message_id,
        sent_at=sent_at,
        event_type=event_type,
        delivery_id=delivery_id,
    )
    return body, headers


def next_attempt_at(
    delivery: WebhookDelivery, number: int, result: AttemptResult, attempted_at: datetime, settings: Settings
) -> datetime:
    """When retry `number + 1` of a delivery is due, after attempt `number` failed at `attempted_at`.

    Moves `schedule_start_at` later when the receiver's Retry-After asks for more than the schedule
    gives, so that the retries after this one keep their spacing.
    """
    offsets = retry_offsets(settings)
    if delivery.schedule_start_at is None:
        delivery.schedule_start_at = attempted_at
    due = delivery.schedule_start_at + offsets[number - 1]
    if result.retry_after is not None:
        wanted = attempted_at + min(timedelta(seconds=result.retry_after), RETRY_AFTER_CAP)
        if wanted > due:
            delivery.schedule_start_at += wanted - due
            due = wanted
    gap = offsets[number - 1] - (offsets[number - 2] if number >= 2 else timedelta(0))
    return due + gap * (settings.webhook_retry_jitter * random.random())


def apply_result(
    delivery: WebhookDelivery, number: int, result: AttemptResult, attempted_at: datetime, settings: Settings
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
    if delivery.schedule_start_at is None:
        delivery.schedule_start_at = attempted_at
    if result.succeeded:
        delivery.status, delivery.next_attempt_at = "succeeded", None
    elif number >= delivery.max_attempts or result.gone:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delivery.status = "pending"
        delivery.next_attempt_at = next_attempt_at(delivery, number, result, attempted_at, settings)
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


# --- the endpoint's health --------------------------------------------------------------------------


def _gone_reason(now: datetime) -> str:
    return f"The endpoint answered 410 Gone at {iso_timestamp(now)}."


def _failing_reason(since: datetime, settings: Settings) -> str:
    return (
        f"Every attempt since {iso_timestamp(since)} failed "
        f"(disabled after {_duration(settings.webhook_disable_after_seconds)} of failures)."
    )


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"


def needs_health_update(
    kind: str, failing_since: datetime | None, result: AttemptResult, now: datetime, settings: Settings
) -> bool:
    """Whether this attempt changes the endpoint (judged from what the claim read, to leave the
    endpoint's row alone on the common path). A job's own webhook has no endpoint."""
    if kind == "job":
        return False
    if result.gone:
        return True
    if kind == "test":
        return False  # a ping neither starts nor ends a run of failures
    if result.succeeded:
        return failing_since is not None
    limit = timedelta(seconds=settings.webhook_disable_after_seconds)
    return failing_since is None or now - failing_since >= limit


async def update_health(
    session: AsyncSession,
    settings: Settings,
    endpoint_id: str,
    kind: str,
    result: AttemptResult,
    now: datetime,
) -> str | None:
    """Record what an attempt says about its endpoint; the reason, if this disabled it.

    Call before locking the delivery: endpoint then delivery is the order the API locks them in.
    """
    reason: str | None = None
    if result.gone:
        reason = _gone_reason(now)
    elif kind == "test":
        return None
    elif result.succeeded:
        await repository.mark_healthy(session, endpoint_id)
        return None
    else:
        since = await repository.mark_failing(session, endpoint_id, now)
        if since is None or now - since < timedelta(seconds=settings.webhook_disable_after_seconds):
            return None
        reason = _failing_reason(since, settings)
    endpoint = await repository.disable(session, endpoint_id, reason, now)
    if endpoint is None:
        return None  # disabled already (or deleted)
    await repository.fail_pending(session, endpoint_id)
    await notify_owners(session, settings, endpoint, reason)
    logger.warning("webhook %s disabled: %s", endpoint_id, reason)
    return reason


async def notify_owners(session: AsyncSession, settings: Settings, endpoint: WebhookEndpoint, reason: str) -> None:
    """Email each owner of the organization (through the `email.send` task, once this commits)."""
    mode = "live" if endpoint.livemode else "test-mode"
    subject = f"Webhook disabled: {endpoint.url[:100]}"
    body = (
        f"Backplane disabled the {mode} webhook {endpoint.id}, which posted events to\n\n"
        f"    {endpoint.url}\n\n"
        f"{reason} It receives no events until it is enabled again; deliveries waiting for a retry "
        "were marked failed.\n\n"
        "Once the endpoint answers again, enable it with\n\n"
        f'    PATCH {settings.public_base_url.rstrip("/")}/v1/webhooks/{endpoint.id}  {{"enabled": true}}\n\n'
        "and redeliver what it missed (GET /v1/events?delivery_success=false lists those events, and "
        f"POST /v1/webhooks/{endpoint.id}/deliveries/<delivery id>/redeliver sends one again).\n"
    )
    for address in await repository.owner_emails(session, endpoint.organization_id):
        effects(session).enqueue(SEND_EMAIL, address, subject, body)


class FirstAttempts(Protocol):
    """Where `dispatch` gets slots for the first attempts of the deliveries it makes, and hands them
    over once its transaction commits: the worker's pump (`Pump.first_attempts`)."""

    encryptor: Encryptor

    async def take(self, wanted: list[Pair]) -> list[Pair]:
        """Slots for those of `wanted` whose endpoint has one free now; the others are not kept waiting."""
        ...

    async def start(self, claims: list[Claim], rest: list[Pair]) -> None:
        """After the commit: send `claims`, give back the other slots taken, hand `rest` over."""
        ...


async def dispatch(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    limit: int = DISPATCH_BATCH,
    *,
    first: FirstAttempts | None = None,
) -> int:
    """Turn up to `limit` undispatched events into deliveries; the number of events handled.

    With `first` (the worker's pump), each new delivery whose endpoint has a slot free is claimed
    here, in this transaction: it is inserted with its first attempt's lease, as `claim` would
    have leased it, and sent once the transaction commits, which saves the claim's own transaction.
    The others (a full endpoint, an open breaker, an ordered endpoint, whose order `claim` keeps) go
    to the pump as (delivery id, endpoint id) pairs. Without `first` each becomes a `webhooks.deliver`
    job.
    """
    events = await claim_undispatched(session, limit, now)
    if not events:
        return 0
    endpoints = await active_endpoints_of(session, {event.organization_id for event in events})
    rows: list[dict[str, Any]] = []
    made: list[tuple[dict[str, Any], WebhookEndpoint, Event]] = []
    for event in events:
        for endpoint in endpoints:
            if (
                endpoint.organization_id == event.organization_id
                and endpoint.livemode == event.livemode
                and endpoint.wants(event.type)
            ):
                row = delivery_values(endpoint, settings, kind="event", event=event, now=now)
                rows.append(row)
                if first is None:
                    _queue_attempt(session, row["id"], endpoint.id, 1, now)
                else:
                    made.append((row, endpoint, event))
    claims = await _claim_first(first, made, settings, now) if first is not None and made else []
    if rows:
        await insert_deliveries(session, rows)
    claimed = {claim.delivery_id for claim in claims}
    rest = [(row["id"], endpoint.id) for row, endpoint, _ in made if row["id"] not in claimed]
    if first is not None and made:
        effects(session).call(partial(first.start, claims, rest), "sending the first attempts")
    return len(events)


async def _claim_first(
    first: FirstAttempts, made: list[tuple[dict[str, Any], WebhookEndpoint, Event]], settings: Settings, now: datetime
) -> list[Claim]:
    """The claims of the new deliveries that got a slot: their rows (not inserted yet) get the lease."""
    wanted = [(row["id"], endpoint.id) for row, endpoint, _ in made if not endpoint.ordered]
    try:
        granted = {delivery_id for delivery_id, _ in await first.take(wanted)}
    except Exception:  # Redis away: the pump takes them the usual way, or the sweep finds them
        logger.warning("webhook dispatch: no slots for first attempts; handing the deliveries over", exc_info=True)
        return []
    lease_until = now + attempt_lease(settings)
    claims: list[Claim] = []
    for row, endpoint, event in made:
        if row["id"] not in granted:
            continue
        data = payload(event.type, event.created_at, endpoint.id, event.data)
        try:
            body, headers = _signed(data, endpoint, event.id, row["event_type"], row["id"], now, first.encryptor)
        except DecryptionFailed:  # `claim` says so in the log, each time the sweep hands it over
            continue
        row["next_attempt_at"] = lease_until
        claims.append(
            Claim(
                row["id"],
                endpoint.id,
                "event",
                1,
                endpoint.url,
                body,
                headers,
                endpoint.failing_since,
                now,
                row["trace_context"],
            )
        )
    return claims


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery claimed for attempt `number`: what to send where, and what the claim read."""

    delivery_id: str
    endpoint_id: str
    kind: str
    number: int
    url: str
    body: bytes
    headers: dict[str, str]
    failing_since: datetime | None
    attempted_at: datetime
    trace_context: dict[str, str] | None = None  # the delivery's: its attempt's span continues it
    ordered_key: ordering.Key | None = None  # an ordered endpoint's (endpoint, resource): ending wakes the next


def _claim_found(
    delivery: WebhookDelivery,
    endpoint: Target,
    event: Event | None,
    settings: Settings,
    encryptor: Encryptor,
    now: datetime,
) -> Claim | None:
    """Claim a locked delivery for an attempt at `now`: its request, signed (the caller then gives it
    a lease that keeps any other job away); None when there is nothing to send now."""
    if delivery.status != "pending":
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY_TOLERANCE:
        return None  # not due: a stale job, or an attempt in progress holds the lease
    if not endpoint.enabled:
        delivery.status, delivery.next_attempt_at = "failed", None
        return None
    try:
        body, headers = build_request(delivery, endpoint, event, now, encryptor)
    except DecryptionFailed:
        # The operator dropped the key that encrypted this secret: nothing can be signed. The delivery
        # stays due, uncounted, and the sweep tries again each minute until the key is back.
        logger.error(
            "webhook %s: its signing secret cannot be decrypted with ENCRYPTION_KEYS; delivery %s waits "
            "(put the key it was encrypted with back, and run `backplane secrets rotate`)",
            endpoint.id,
            delivery.id,
        )
        return None
    ordered_key = _key(delivery, endpoint)  # the caller sets the lease (`lease_deliveries`), for all at once
    return Claim(
        delivery.id,
        endpoint.id,
        delivery.kind,
        delivery.attempt_count + 1,
        endpoint.url,
        body,
        headers,
        endpoint.failing_since,
        now,
        delivery.trace_context,
        ordered_key,
    )


def _key(delivery: WebhookDelivery, endpoint: Target) -> ordering.Key | None:
    if endpoint.ordered and delivery.endpoint_id is not None and delivery.resource_id is not None:
        return (delivery.endpoint_id, delivery.resource_id)
    return None


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    encryptor: Encryptor,
    delivery_ids: list[str],
    now: datetime,
) -> list[Claim]:
    """Claim the due ones of these deliveries in one short transaction (one locking read, one
    batched update); those another worker holds, or that are not due, are left out, and so are those
    of ordered endpoints that wait for an earlier event's delivery (parked: ordering.py)."""
    async with unit_of_work(sessionmaker) as session:
        found = await lock_for_attempt(session, delivery_ids)
        rows: list[tuple[WebhookDelivery, Target, Event | None]] = []
        for delivery, endpoint, event, secret in found:
            if endpoint is not None:
                rows.append((delivery, endpoint, event))
            elif delivery.kind == "job":
                encrypted = secret.secret_encrypted if secret is not None else None
                if encrypted is None:
                    encrypted = await job_secret(session, encryptor, delivery.organization_id, delivery.livemode)
                rows.append((delivery, JobTarget(delivery, encrypted), event))
        ordered = [
            (row[0].id, key) for row in rows if row[0].status == "pending" and (key := _key(row[0], row[1])) is not None
        ]
        held_back = await ordering.blocked(session, ordered)
        claims: list[Claim] = []
        for delivery, target, event in rows:
            if delivery.id in held_back:
                delivery.next_attempt_at = None  # parked until the earlier one ends
                continue
            if (found_claim := _claim_found(delivery, target, event, settings, encryptor, now)) is not None:
                claims.append(found_claim)
        if claims:
            await lease_deliveries(session, [c.delivery_id for c in claims], now + attempt_lease(settings))
        return claims


async def record_outcomes(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: ArqRedis,
    settings: Settings,
    outcomes: list[tuple[Claim, AttemptResult]],
) -> dict[str, str | None]:
    """Log the attempts and move their deliveries on, in one transaction; each delivery's status
    afterwards (None: deleted with its endpoint while the request ran).

    The endpoints first (locked in id order, then their health), then the deliveries, locked in one
    read: endpoint then delivery is the order the API locks them in, so that a batch never
    deadlocks with a webhook being disabled or deleted.
    """
    async with unit_of_work(sessionmaker) as session:
        await lock_endpoints(session, sorted({done.endpoint_id for done, _ in outcomes}))
        disabled: set[str] = set()
        for done, result in sorted(outcomes, key=lambda outcome: outcome[0].endpoint_id):
            if done.endpoint_id in disabled or not needs_health_update(
                done.kind, done.failing_since, result, done.attempted_at, settings
            ):
                continue
            reason = await update_health(session, settings, done.endpoint_id, done.kind, result, done.attempted_at)
            if reason is not None:
                disabled.add(done.endpoint_id)
                effects(session).call(_count_disabled, "counting a disabled endpoint")
        # The common case, delivered, in one statement; the rest (retries, failures) read their delivery.
        delivered = [(d, r) for d, r in outcomes if r.succeeded and d.endpoint_id not in disabled]
        others = [(d, r) for d, r in outcomes if not r.succeeded or d.endpoint_id in disabled]
        statuses: dict[str, str | None] = {}
        if delivered:
            logged = await repository.log_delivered(
                session,
                [
                    (d.delivery_id, d.number, d.attempted_at, r.status_code, r.response_body, r.duration_ms)
                    for d, r in delivered
                ],
            )
            for done, _ in delivered:
                statuses[done.delivery_id] = "succeeded" if done.delivery_id in logged else None
                logger.debug("webhook delivery %s attempt %d: delivered", done.delivery_id, done.number)
        locked = await lock_deliveries(session, [done.delivery_id for done, _ in others]) if others else {}
        for done, result in others:
            delivery = locked.get(done.delivery_id)
            if delivery is None:
                statuses[done.delivery_id] = None
                continue
            session.add(apply_result(delivery, done.number, result, done.attempted_at, settings))
            if done.endpoint_id in disabled:
                delivery.status, delivery.next_attempt_at = "failed", None
            if delivery.status == "pending":
                schedule(session, delivery)
            statuses[done.delivery_id] = delivery.status
        await session.flush()
        ended = [
            done.ordered_key for done, _ in outcomes if done.ordered_key and statuses.get(done.delivery_id) != "pending"
        ]
        for delivery_id, endpoint_id, _ in await ordering.wake_next(session, ended, utcnow()):
            wake(session, delivery_id, endpoint_id)
        effects(session).call(partial(_count_attempts, outcomes, statuses), "counting webhook attempts")
    return statuses


async def _count_attempts(outcomes: list[tuple[Claim, AttemptResult]], statuses: dict[str, str | None]) -> None:
    for _, result in outcomes:
        metrics.WEBHOOK_ATTEMPTS.labels(metrics.http_outcome(result.status_code)).inc()
        metrics.WEBHOOK_LATENCY.observe(result.duration_ms / 1000)
    metrics.WEBHOOK_DELIVERIES_FAILED.inc(sum(1 for status in statuses.values() if status == "failed"))


async def _count_disabled() -> None:
    metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()


async def attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: ArqRedis,
    client: aiohttp.ClientSession,
    settings: Settings,
    encryptor: Encryptor,
    delivery_id: str,
    *,
    now: datetime,
) -> str | None:
    """One attempt of a due delivery; its status afterwards, or None when there was nothing to do."""
    claimed = await claim(sessionmaker, settings, encryptor, [delivery_id], now)
    if not claimed:
        return None
    [mine] = claimed
    result = await send(client, mine.url, mine.body, mine.headers, settings=settings, claim=mine)
    return (await record_outcomes(sessionmaker, queue, settings, [(mine, result)]))[delivery_id]


def sweep_grace(settings: Settings) -> timedelta:
    """How overdue a delivery is before the sweep looks for it in Redis (the sweep runs as often)."""
    return timedelta(seconds=settings.recovery_seconds / 3)


async def sweep(session: AsyncSession, queue: ArqRedis, now: datetime, grace: timedelta) -> int:
    """Queue again the deliveries overdue by `grace` that Redis lost; how many were requeued.

    Overdue means past the claim of any attempt under way too, so a job arq still shows in progress
    belongs to a worker that died mid-attempt: arq would run it again only once its own lock expires
    (minutes), so the delivery gets a job of its own id now (the claim keeps the two apart).
    """
    for delivery_id, endpoint_id, _ in await ordering.stranded(session, now, SWEEP_BATCH):
        wake(session, delivery_id, endpoint_id)
    late = await overdue(session, now - grace, SWEEP_BATCH, per_target=SWEEP_PER_ENDPOINT)
    found = [
        (delivery_id, endpoint_id or job_target(url or ""), attempts)
        for delivery_id, endpoint_id, attempts, url in late
    ]
    async with queue.pipeline(transaction=False) as pipe:
        for delivery_id, endpoint_id, attempts in found:
            pipe.zscore(waiting_key(endpoint_id), delivery_id)
            pipe.exists(in_progress_key_prefix + job_id(delivery_id, attempts + 1))
        known = await pipe.execute()
    requeued = 0
    probed: set[str] = set()
    for (delivery_id, endpoint_id, attempts), waiting, stuck in zip(found, known[::2], known[1::2], strict=True):
        if waiting is not None:
            # Waiting for a slot of its endpoint (the attempt that frees one wakes it) or for its breaker's
            # back-off to end (its probe wakes it). Should that wake-up be lost, a probe finds it.
            if endpoint_id not in probed:
                probed.add(endpoint_id)
                await enqueue(
                    queue,
                    PROBE_TASK,
                    endpoint_id,
                    _job_id=f"{PROBE_TASK}:{endpoint_id}:swept",
                    _queue_name=DEFAULT_QUEUE,
                )
            continue
        queued_as = job_id(delivery_id, attempts + 1)
        if stuck:
            queued_as += f":swept:{secrets.token_hex(4)}"
        if await enqueue(queue, DELIVER_TASK, delivery_id, endpoint_id, _job_id=queued_as):
            requeued += 1
    if requeued:
        logger.warning("requeued %d webhook deliveries whose job was lost", requeued)
    return requeued
