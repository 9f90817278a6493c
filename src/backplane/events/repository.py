from __future__ import annotations

import re
import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.tenancy import TenantRepository
from backplane.events.models import Event

_EVENT_ID = re.compile(r"evt_[0-9a-f]{24}")


class EventRepository(TenantRepository[Event]):
    """Events of one organization and one mode: test-mode keys see only test-mode events."""

    model = Event

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID, livemode: bool) -> None:
        super().__init__(session, organization_id)
        self.livemode = livemode

    def select(self) -> Select[Event]:
        return super().select().where(Event.livemode.is_(self.livemode))

    async def get_by_public_id(self, event_id: str) -> Event | None:
        if not _EVENT_ID.fullmatch(event_id):
            return None  # names nothing (and may hold what PostgreSQL refuses, such as NUL)
        return (await self.session.execute(self.select().where(Event.id == event_id))).scalar_one_or_none()


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
