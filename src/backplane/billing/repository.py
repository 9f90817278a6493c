from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing.models import StripeEvent, Subscription


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_for_organization(
        self, organization_id: uuid.UUID, *, for_update: bool = False
    ) -> Subscription | None:
        stmt = select(Subscription).where(Subscription.organization_id == organization_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def find_organization(self, *, subscription_id: str | None, customer_id: str | None) -> uuid.UUID | None:
        """The organization a Stripe subscription or customer belongs to (webhooks start from Stripe ids)."""
        for column, value in (
            (Subscription.stripe_subscription_id, subscription_id),
            (Subscription.stripe_customer_id, customer_id),
        ):
            if value:
                found = (
                    await self.session.execute(select(Subscription.organization_id).where(column == value))
                ).scalar()
                if found is not None:
                    return found
        return None

    def add(self, subscription: Subscription) -> Subscription:
        self.session.add(subscription)
        return subscription


async def claim_stripe_event(session: AsyncSession, event_id: str, event_type: str) -> bool:
    """True the first time an event id is seen. A concurrent delivery of the same id waits on the
    row lock until this transaction ends, then finds it claimed: each event has one effect."""
    stmt = (
        insert(StripeEvent)
        .values(id=event_id, type=event_type)
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    )
    return (await session.execute(stmt)).scalar() is not None
