from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.tenancy import LivemodeRepository
from backplane.events.models import Event


class EventRepository(LivemodeRepository[Event]):
    """Events of one organization and one mode: test-mode keys see only test-mode events."""

    model = Event
    id_prefix = "evt"


async def claim_undispatched(session: AsyncSession, limit: int) -> list[Event]:
    """The oldest events not yet turned into deliveries, locked for this transaction.

    The dispatcher's one cross-organization read: it starts from the outbox, not from a tenant.
    SKIP LOCKED lets two workers dispatch side by side without waiting on or repeating each other.
    """
    stmt = (
        select(Event)
        .where(Event.dispatched_at.is_(None))
        .order_by(Event.created_at, Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).scalars())
