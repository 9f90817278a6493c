"""Recording platform events. `backplane.webhooks.delivery` delivers them; `/v1/events` lists them."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Literal, get_args

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core import keys, tracing
from backplane.core.effects import effects
from backplane.core.ids import new_id
from backplane.events.models import Event

logger = logging.getLogger(__name__)

NEW_EVENTS_KEY = keys.EVENTS_COMMITTED
_WAKE_PENDING = "events_wake_pending"

EventType = Literal[
    "job.completed",
    "job.failed",
    "subscription.created",
    "subscription.updated",
    "subscription.cancelled",
    "payment.succeeded",
    "payment.failed",
    "quota.threshold_reached",
    "api_key.created",
    "api_key.revoked",
    "license.created",
    "license.updated",
    "license.suspended",
    "license.expiring",
    "license.expired",
    "member.invited",
    "member.joined",
    "member.removed",
    "file.ready",
    "seat.acquired",
    "seat.released",
    "seat.expired",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# Types an endpoint receives only when it names them: `["*"]` does not include them (a busy license
# makes many seat events; an endpoint that did not ask for them should not pay for them).
OPT_IN_TYPES: frozenset[str] = frozenset({"seat.acquired", "seat.released", "seat.expired"})


def new_event_id() -> str:
    return new_id("evt")


def record_event(
    session: AsyncSession, organization_id: uuid.UUID, type_: str, data: dict[str, Any], *, livemode: bool = True
) -> Event:
    """Add the event to the session's transaction (the outbox): it exists if and only if that commits.

    Once it has committed, the webhooks' dispatcher is woken (see `wake_dispatcher_after_commit`).
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_}")
    event_id = new_event_id()
    event = Event(
        id=event_id,
        organization_id=organization_id,
        type=type_,
        data=data,
        livemode=livemode,
        trace_context=tracing.mark(type_, event_id=event_id),  # what its deliveries continue
    )
    session.add(event)
    wake_dispatcher_after_commit(session)
    return event


def wake_dispatcher_after_commit(session: AsyncSession) -> None:
    """Once this transaction commits, push onto NEW_EVENTS_KEY, where the workers' dispatcher listens.

    The Redis client comes from the session (`session.info["redis"]`, which the API's and the
    workers' sessionmakers carry); without one nothing is pushed and the 5-second dispatch cron
    finds the event. One push per transaction, and the list never holds more than one entry.
    """
    redis: Redis | None = session.info.get("redis")
    if redis is None or session.info.get(_WAKE_PENDING):
        return
    session.info[_WAKE_PENDING] = True

    async def _wake() -> None:  # if it fails, the cron dispatches the event a few seconds later
        session.info.pop(_WAKE_PENDING, None)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.lpush(NEW_EVENTS_KEY, "1")
            pipe.ltrim(NEW_EVENTS_KEY, 0, 0)
            await pipe.execute()

    effects(session).call(_wake, "waking the webhook dispatcher")
