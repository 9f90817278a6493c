from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing.models import Invoice, StripeEvent, Subscription
from backplane.core.db import utcnow
from backplane.organizations.models import Organization


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, organization_id: uuid.UUID) -> None:
        """Serialize every change of one organization's subscription (webhooks, API calls, the sync)
        until this transaction ends: each fetches Stripe's current object under the lock, so the
        last to apply has also fetched last. An advisory lock, because the row may not exist yet."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"billing:{organization_id}"}
        )

    async def list_synced(self, organization_id: uuid.UUID | None = None) -> Sequence[uuid.UUID]:
        """Organizations whose subscription reconciliation compares with Stripe: every paid one that has
        not ended (a canceled subscription stays canceled), and, for 35 days after their last change,
        those whose checkout has not completed here or that ended (a checkout or new subscription whose
        webhook was lost). The free plan without a Stripe customer has nothing to compare."""
        recent = utcnow() - timedelta(days=35)
        stmt = (
            select(Subscription.organization_id)
            .where(
                Subscription.stripe_customer_id.is_not(None),
                or_(
                    and_(
                        Subscription.stripe_subscription_id.is_not(None),
                        Subscription.plan != "free",
                        Subscription.status != "canceled",
                    ),
                    and_(Subscription.status.in_(("incomplete", "canceled")), Subscription.updated_at > recent),
                ),
            )
            .order_by(Subscription.organization_id)
        )
        if organization_id is not None:
            stmt = stmt.where(Subscription.organization_id == organization_id)
        return list((await self.session.execute(stmt)).scalars().all())

    async def get_for_organization(
        self, organization_id: uuid.UUID, *, for_update: bool = False
    ) -> Subscription | None:
        stmt = select(Subscription).where(Subscription.organization_id == organization_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def organization_exists(self, organization_id: uuid.UUID) -> bool:
        found = await self.session.execute(select(Organization.id).where(Organization.id == organization_id))
        return found.scalar() is not None

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


class InvoiceRepository:
    """Invoices of one organization (every query is scoped by it)."""

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def select(self) -> Select[Invoice]:
        return select(Invoice).where(Invoice.organization_id == self.organization_id)

    async def get(self, invoice_id: uuid.UUID) -> Invoice | None:
        return (await self.session.execute(self.select().where(Invoice.id == invoice_id))).scalar_one_or_none()

    async def get_by_stripe_id(self, stripe_invoice_id: str) -> Invoice | None:
        stmt = self.select().where(Invoice.stripe_invoice_id == stripe_invoice_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def upsert_stripe(self, stripe_invoice_id: str, values: dict[str, Any]) -> None:
        """Insert or refresh the local copy of a Stripe invoice."""
        stmt = insert(Invoice).values(
            id=uuid.uuid4(), organization_id=self.organization_id, stripe_invoice_id=stripe_invoice_id, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Invoice.stripe_invoice_id],
            set_=values,
            where=Invoice.organization_id == self.organization_id,
        )
        await self.session.execute(stmt)

    def add(self, invoice: Invoice) -> Invoice:
        self.session.add(invoice)
        return invoice
