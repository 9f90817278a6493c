"""Invoices: Stripe's, listed from Stripe with its cursor and kept as local copies (from
`invoice.payment_*` events and every list), so the list still answers while Stripe is slow or down;
in local billing mode, the service's own invoices of local purchases.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing.models import Invoice, Subscription
from backplane.billing.plans import PLANS, PlanName
from backplane.billing.repository import InvoiceRepository, SubscriptionRepository
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import InvalidInput, NotFound

logger = logging.getLogger(__name__)

# Stripe invoice ids (`in_…`) are the cursor of a Stripe list; a local copy is found by the same id.
STRIPE_CURSOR_PATTERN = r"^in_[A-Za-z0-9_]{1,250}$"
# How long a Stripe list may take before the local copies answer instead.
STRIPE_LIST_TIMEOUT_SECONDS = 5.0


class InvoiceNotFound(NotFound):
    default_message = "No such invoice."


def subscription_of(obj: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills (before and after Stripe API version 2025-03-31)."""
    found = obj.get("subscription") or (
        ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    return found if isinstance(found, str) else None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _values(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "number": obj.get("number"),
        "status": str(obj.get("status") or "draft"),
        "amount_due": int(obj.get("amount_due") or 0),
        "amount_paid": int(obj.get("amount_paid") or 0),
        "currency": str(obj.get("currency") or "usd")[:3],
        "description": (obj.get("description") or None) and str(obj["description"])[:255],
        "period_start": _time(obj.get("period_start")),
        "period_end": _time(obj.get("period_end")),
        "hosted_invoice_url": obj.get("hosted_invoice_url"),
        "invoice_pdf": obj.get("invoice_pdf"),
        "livemode": bool(obj.get("livemode")),
        "created_at": _time(obj.get("created")) or utcnow(),
    }


async def keep_copy(session: AsyncSession, organization_id: uuid.UUID, obj: Mapping[str, Any]) -> None:
    """Insert or refresh the local copy of Stripe invoice `obj`."""
    if isinstance(obj.get("id"), str):
        await InvoiceRepository(session, organization_id).upsert_stripe(obj["id"], _values(obj))


def read(invoice: Invoice | Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The API's view of a local invoice or of a Stripe invoice object."""
    if isinstance(invoice, Invoice):
        return {
            "id": invoice.stripe_invoice_id or str(invoice.id),
            "number": invoice.number,
            "status": invoice.status,
            "amount_due": invoice.amount_due,
            "amount_paid": invoice.amount_paid,
            "currency": invoice.currency,
            "description": invoice.description,
            "period_start": invoice.period_start,
            "period_end": invoice.period_end,
            "hosted_invoice_url": invoice.hosted_invoice_url
            or (None if invoice.stripe_invoice_id else local_invoice_url(invoice.id, settings)),
            "invoice_pdf": invoice.invoice_pdf,
            "livemode": invoice.livemode,
            "created_at": invoice.created_at,
        }
    values = _values(invoice)
    return {"id": invoice["id"], **{key: values[key] for key in _FIELDS}}


_FIELDS = (
    "number",
    "status",
    "amount_due",
    "amount_paid",
    "currency",
    "description",
    "period_start",
    "period_end",
    "hosted_invoice_url",
    "invoice_pdf",
    "livemode",
    "created_at",
)


def local_invoice_url(invoice_id: uuid.UUID, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/v1/invoices/{invoice_id}/page"


async def list_invoices(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    settings: Settings,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the organization's invoices, newest first, and the cursor of the next page.

    Stripe mode: Stripe's list (`starting_after` = the cursor), each invoice kept as a local copy;
    when Stripe does not answer, the local copies, paged by the same cursor. Local mode: the
    service's own invoices (the cursor is an invoice id).
    """
    subscription = await SubscriptionRepository(session).get_for_organization(organization_id)
    customer_id = subscription.stripe_customer_id if subscription else None
    if client is not None and customer_id is not None:
        if cursor is not None and not cursor.startswith("in_"):
            raise InvalidInput({"cursor": ["Invalid cursor."]})
        params: dict[str, Any] = {"customer": customer_id, "limit": limit}
        if cursor:
            params["starting_after"] = cursor
        try:
            found = await asyncio.wait_for(
                client.v1.invoices.list_async(
                    params=params,  # type: ignore[arg-type]
                    options={"max_network_retries": 0},  # slow or failing: the local copies answer at once
                ),
                STRIPE_LIST_TIMEOUT_SECONDS,
            )
        except (stripe.StripeError, TimeoutError) as exc:
            logger.warning("listing invoices of %s from Stripe failed (%s): local copies answer", organization_id, exc)
        else:
            data = [obj.to_dict() for obj in found.data]
            for obj in data:
                await keep_copy(session, organization_id, obj)
            next_cursor = data[-1]["id"] if found.has_more and data else None
            return [read(obj, settings) for obj in data], next_cursor
    return await _local_page(session, settings, organization_id, limit=limit, cursor=cursor)


async def _local_page(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    repository = InvoiceRepository(session, organization_id)
    stmt = repository.select()
    if cursor:
        last = await _by_cursor(repository, cursor)
        stmt = stmt.where(
            or_(Invoice.created_at < last.created_at, and_(Invoice.created_at == last.created_at, Invoice.id < last.id))
        )
    rows: Sequence[Invoice] = (
        (await session.execute(stmt.order_by(Invoice.created_at.desc(), Invoice.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )
    page = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last_row = page[-1]
        next_cursor = last_row.stripe_invoice_id or str(last_row.id)
    return [read(row, settings) for row in page], next_cursor


async def _by_cursor(repository: InvoiceRepository, cursor: str) -> Invoice:
    found: Invoice | None
    if cursor.startswith("in_"):
        found = await repository.get_by_stripe_id(cursor)
    else:
        try:
            found = await repository.get(uuid.UUID(cursor))
        except ValueError:
            found = None
    if found is None:
        raise InvalidInput({"cursor": ["Invalid cursor."]})
    return found


async def record_local_purchase(session: AsyncSession, subscription: Subscription) -> Invoice:
    """Local billing mode: the invoice of a purchase (no payment is taken, so it is paid at once)."""
    plan = PLANS.get(PlanName(subscription.plan)) if subscription.plan in PlanName.__members__ else None
    amount = (plan.monthly_price_cents if plan else 0) * subscription.seats
    repository = InvoiceRepository(session, subscription.organization_id)
    count = (
        await session.execute(
            select(func.count()).select_from(Invoice).where(Invoice.organization_id == subscription.organization_id)
        )
    ).scalar_one()
    now = utcnow()
    invoice = repository.add(
        Invoice(
            id=uuid.uuid4(),
            organization_id=subscription.organization_id,
            number=f"LOCAL-{str(subscription.organization_id)[:8].upper()}-{count + 1:04d}",
            status="paid",
            amount_due=amount,
            amount_paid=amount,
            currency="usd",
            description=f"{subscription.plan.capitalize()} plan, {subscription.seats} seats, one month",
            period_start=now,
            period_end=subscription.current_period_end,
            livemode=False,
            created_at=now,
        )
    )
    await session.flush()
    return invoice


async def get_local(session: AsyncSession, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
    """One of the organization's own (local-mode) invoices, or 404 (another organization's too)."""
    invoice = await InvoiceRepository(session, organization_id).get(invoice_id)
    if invoice is None or invoice.stripe_invoice_id is not None:
        raise InvoiceNotFound()
    return invoice
