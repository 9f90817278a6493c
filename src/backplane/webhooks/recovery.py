"""Recovery: `POST /v1/webhooks/{id}/recover` sends again every event of a window that the endpoint did
not receive, once each, in order, as one background operation (`webhooks.recover`) whose progress
`GET /v1/webhooks/{id}/recoveries/{rid}` reads.

Which events: the endpoint's organization and mode, created in [since, until), of a type it subscribes
to (`WebhookEndpoint.wants`, in SQL), with no successful delivery to this endpoint. The operation goes
through them oldest first in batches: a batch's deliveries (kind `recovery`, the normal retry schedule)
are made in one transaction, then their first attempts are made one after another, signed as every delivery is,
each after ending the endpoint's other deliveries of that event still waiting for a retry (as `failed`:
the recovery's delivery takes their place, so the event is not sent twice). A first
attempt that fails stops the operation (`stopped`, with the reason): that delivery keeps its retries, and
sending later events before it would break the order; recover again once the receiver answers.
On an endpoint with `ordering: per_resource` the attempts keep that order too (ordering.py): an event
whose resource still has an earlier delivery under way waits for it, and the operation stops there.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.effects import effects
from backplane.core.errors import Conflict, InvalidInput, NotFound
from backplane.core.ids import new_id
from backplane.events.models import Event
from backplane.events.service import OPT_IN_TYPES
from backplane.webhooks import delivery as flow
from backplane.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookRecovery
from backplane.workers.context import session_scope

logger = logging.getLogger(__name__)

RECOVER_TASK = "webhooks.recover"
BATCH = 100


class RecoveryRunning(Conflict):
    code = "RECOVERY_RUNNING"


def _wanted(endpoint: WebhookEndpoint) -> ColumnElement[bool]:
    named = [t for t in endpoint.events if t != "*"]
    if "*" in endpoint.events:
        return or_(Event.type.in_(named), Event.type.not_in(sorted(OPT_IN_TYPES)))
    return Event.type.in_(named)


def missing_events(endpoint: WebhookEndpoint, recovery: WebhookRecovery) -> Any:
    """The window's events this endpoint subscribes to and never received, that this recovery has not
    sent yet, oldest first."""
    delivered = exists().where(
        WebhookDelivery.endpoint_id == endpoint.id,
        WebhookDelivery.event_id == Event.id,
        WebhookDelivery.status == "succeeded",
    )
    sent_here = exists().where(WebhookDelivery.recovery_id == recovery.id, WebhookDelivery.event_id == Event.id)
    return (
        select(Event)
        .where(
            Event.organization_id == endpoint.organization_id,
            Event.livemode == endpoint.livemode,
            Event.created_at >= recovery.since,
            Event.created_at < recovery.until,
            _wanted(endpoint),
            ~delivered,
            ~sent_here,
        )
        .order_by(Event.created_at, Event.id)
    )


async def start(
    session: AsyncSession,
    principal: Principal,
    endpoint: WebhookEndpoint,
    since: datetime,
    until: datetime | None,
) -> WebhookRecovery:
    now = utcnow()
    until = until or now
    if since >= until:
        raise InvalidInput({"since": ["Must be before `until` (default: now)."]})
    if since > now:
        raise InvalidInput({"since": ["Must not be in the future."]})
    if not endpoint.enabled:
        raise Conflict("This webhook is disabled; enable it before recovering its events.")
    running = await session.scalar(
        select(WebhookRecovery.id).where(
            WebhookRecovery.endpoint_id == endpoint.id, WebhookRecovery.status == "running"
        )
    )
    if running is not None:
        raise RecoveryRunning(f"Recovery {running} of this webhook is still running; wait for it to end.")
    recovery = WebhookRecovery(
        id=new_id("whr"),
        organization_id=principal.organization_id,
        endpoint_id=endpoint.id,
        since=since,
        until=until,
        status="running",
        events_sent=0,
        created_at=now,
    )
    session.add(recovery)
    await session.flush()  # the unique index refuses a second running one that raced this one
    effects(session).enqueue(RECOVER_TASK, recovery.id, _job_id=f"{RECOVER_TASK}:{recovery.id}")
    return recovery


async def get(
    session: AsyncSession, principal: Principal, endpoint: WebhookEndpoint, recovery_id: str
) -> WebhookRecovery:
    recovery = await session.scalar(
        select(WebhookRecovery).where(
            WebhookRecovery.id == recovery_id,
            WebhookRecovery.endpoint_id == endpoint.id,
            WebhookRecovery.organization_id == principal.organization_id,
        )
    )
    if recovery is None:
        raise NotFound("No recovery with this id.")
    return recovery


async def delivery_counts(session: AsyncSession, recovery: WebhookRecovery) -> dict[str, int]:
    rows = await session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.recovery_id == recovery.id)
        .group_by(WebhookDelivery.status)
    )
    counts = {"pending": 0, "succeeded": 0, "failed": 0}
    counts.update({status: count for status, count in rows.all()})
    return counts


async def _next_batch(session: AsyncSession, settings: Settings, recovery_id: str) -> list[str] | None:
    """Make the next batch's deliveries; their ids in order, [] when done, None when not running."""
    recovery = await session.get(WebhookRecovery, recovery_id, with_for_update=True)
    if recovery is None or recovery.status != "running":
        return None
    endpoint = await session.get(WebhookEndpoint, recovery.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        recovery.status, recovery.finished_at = "stopped", utcnow()
        recovery.stopped_reason = "The webhook was disabled."
        return None
    if recovery.events_total is None:
        query = missing_events(endpoint, recovery).order_by(None).subquery()
        recovery.events_total = await session.scalar(select(func.count()).select_from(query)) or 0
    events = list((await session.scalars(missing_events(endpoint, recovery).limit(BATCH))).all())
    if not events:
        recovery.status, recovery.finished_at = "completed", utcnow()
        return []
    now = utcnow()
    made = []
    for event in events:
        delivery = flow.new_delivery(endpoint, settings, kind="recovery", event=event, now=now)
        delivery.max_attempts = flow.max_attempts(settings)  # the normal retries
        delivery.recovery_id = recovery.id
        session.add(delivery)
        made.append(delivery.id)
    return made


async def _take_over(session: AsyncSession, delivery_id: str) -> None:
    """End the endpoint's other deliveries of this event still waiting for a retry (as `failed`): the
    recovery's delivery takes their place, so the event is not sent twice."""
    mine = await session.get(WebhookDelivery, delivery_id)
    assert mine is not None
    await session.execute(
        update(WebhookDelivery)
        .where(
            and_(
                WebhookDelivery.endpoint_id == mine.endpoint_id,
                WebhookDelivery.event_id == mine.event_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.id != mine.id,
            )
        )
        .values(status="failed", next_attempt_at=None)
    )


async def recover_task(ctx: dict[str, Any], recovery_id: str) -> str:
    """`webhooks.recover`: the whole operation, batch after batch, first attempts one after another."""
    settings: Settings = ctx["settings"]
    while True:
        async with session_scope(ctx) as session:
            batch = await _next_batch(session, settings, recovery_id)
        if not batch:
            return "done"
        for delivery_id in batch:
            async with session_scope(ctx) as session:
                await _take_over(session, delivery_id)
            outcome = await flow.attempt(
                ctx["sessionmaker"],
                ctx["redis"],
                ctx["webhook_http"],
                settings,
                ctx["encryptor"],
                delivery_id,
                now=utcnow(),
            )
            async with session_scope(ctx) as session:
                recovery = await session.get(WebhookRecovery, recovery_id, with_for_update=True)
                assert recovery is not None
                recovery.events_sent += 1
                if outcome != "succeeded":
                    recovery.status, recovery.finished_at = "stopped", utcnow()
                    mine = await session.get(WebhookDelivery, delivery_id)
                    if outcome is None and mine is not None and mine.status == "pending":
                        # An ordered endpoint (`per_resource`) still delivering an earlier event about the
                        # same resource: this one waits for it, and is sent when it ends.
                        recovery.stopped_reason = (
                            f"Delivery {delivery_id} waits for an earlier event about the same resource, still "
                            "being delivered (ordering: per_resource); it is sent once that one ends. The events "
                            "after it were not sent: recover again later."
                        )
                    else:
                        recovery.stopped_reason = (
                            f"Delivery {delivery_id} failed; it is retried on the schedule. The events after it "
                            "were not sent: recover again once the receiver answers."
                        )
                    # Deliveries of this batch not attempted yet: not sent, so a later recovery sends them.
                    await session.execute(
                        WebhookDelivery.__table__.delete().where(  # type: ignore[attr-defined]
                            WebhookDelivery.recovery_id == recovery_id,
                            WebhookDelivery.attempt_count == 0,
                        )
                    )
            if outcome != "succeeded":
                return "stopped"
