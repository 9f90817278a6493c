"""Recording platform events. `backplane.webhooks.delivery` delivers them; `/v1/events` lists them."""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.events.models import Event

EventType = Literal[
    "job.completed",
    "job.failed",
    "subscription.created",
    "subscription.updated",
    "subscription.cancelled",
    "payment.succeeded",
    "payment.failed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def record_event(
    session: AsyncSession, organization_id: uuid.UUID, type_: str, data: dict[str, Any], *, livemode: bool = True
) -> Event:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_}")
    event = Event(id=new_event_id(), organization_id=organization_id, type=type_, data=data, livemode=livemode)
    session.add(event)
    return event
