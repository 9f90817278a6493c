from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import DateTime, Integer, Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.tenancy import LivemodeRepository
from backplane.events.models import Event


class EventRepository(LivemodeRepository[Event]):
    """Events of one organization and one mode: test-mode keys see only test-mode events."""

    model = Event
    id_prefix = "evt"


async def claim_undispatched(session: AsyncSession, limit: int, now: datetime) -> list[Event]:
    """The oldest events not yet turned into deliveries, marked dispatched at `now` (in one statement:
    the caller's transaction makes their deliveries), oldest first.

    The dispatcher's one cross-organization read: it starts from the outbox, not from a tenant.
    SKIP LOCKED lets two workers dispatch side by side without waiting on or repeating each other.
    """
    events = list((await session.scalars(_claim_undispatched(), {"limit": limit, "now": now})).all())
    return sorted(events, key=lambda event: (event.created_at, event.id))


@functools.cache
def _claim_undispatched() -> Update:
    """Built once (the dispatcher runs it for every event it wakes for): only the batch's size and
    the time are parameters."""
    oldest = (
        select(Event.id)
        .where(Event.dispatched_at.is_(None))
        .order_by(Event.created_at, Event.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    return (
        update(Event)
        .where(Event.id.in_(oldest.scalar_subquery()))
        .values(dispatched_at=bindparam("now", type_=DateTime(timezone=True)))
        .returning(Event)
        .execution_options(synchronize_session=False)
    )
