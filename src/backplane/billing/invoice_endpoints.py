"""Invoices on both surfaces, and the Billing Portal (platform surface)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse

from backplane.access.requirements import LiveAdmin, LiveOwner, Public
from backplane.billing import invoices, portal
from backplane.billing.deps import PlatformLimit
from backplane.billing.endpoints import StripeDep
from backplane.billing.schemas import InvoiceRead, LicensingInvoiceList, PortalSession
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors, platform_errors
from backplane.core.pagination import Page, PageParams, page_params
from backplane.core.redis import RedisDep
from backplane.licenses.limits import LicenseOperationsLimit

licensing = APIRouter(
    prefix="/api/v1/subscriptions", tags=["Subscriptions"], responses=licensing_errors(400, 401, 403, 429)
)
platform = APIRouter(tags=["Billing"], responses=platform_errors(401, 403, 429))

PageDep = Annotated[PageParams, Depends(page_params)]
_LIST_DESCRIPTION = (
    "Newest first, in pages: pass `next_cursor` as `cursor` for the next one. In Stripe mode the list is "
    "Stripe's (each invoice's `hosted_invoice_url` and `invoice_pdf` are Stripe's), kept as local copies that "
    "answer when Stripe is slow or down; in local billing mode, this service's invoices of local purchases."
)


@licensing.get(
    "/invoices/",
    response_model=LicensingInvoiceList,
    dependencies=[LicenseOperationsLimit],
    summary="The organization's invoices (owner, admin)",
    description=_LIST_DESCRIPTION,
)
async def licensing_invoices(
    principal: LiveAdmin, page: PageDep, session: SessionDep, client: StripeDep, settings: SettingsDep
) -> LicensingInvoiceList:
    found, next_cursor = await invoices.list_invoices(
        session, client, settings, principal.organization_id, limit=page.limit, cursor=page.cursor
    )
    return LicensingInvoiceList(
        invoices=[InvoiceRead(**i) for i in found], has_more=next_cursor is not None, next_cursor=next_cursor
    )


@platform.get(
    "/v1/invoices",
    response_model=Page[InvoiceRead],
    dependencies=[PlatformLimit],
    summary="The organization's invoices (owner, admin)",
    description=_LIST_DESCRIPTION,
    responses=platform_errors(422),
)
async def platform_invoices(
    principal: LiveAdmin, page: PageDep, session: SessionDep, client: StripeDep, settings: SettingsDep
) -> Page[InvoiceRead]:
    found, next_cursor = await invoices.list_invoices(
        session, client, settings, principal.organization_id, limit=page.limit, cursor=page.cursor
    )
    return Page(data=[InvoiceRead(**i) for i in found], has_more=next_cursor is not None, next_cursor=next_cursor)


@platform.get(
    "/v1/invoices/{invoice_id}/page",
    response_class=HTMLResponse,
    dependencies=[PlatformLimit],
    summary="A local-mode invoice, as a printable page (owner, admin)",
    description="Local billing mode's `hosted_invoice_url`. Stripe's invoices have Stripe's own pages.",
    responses=platform_errors(404, 422),
)
async def invoice_page(
    invoice_id: Annotated[uuid.UUID, Path(description="The invoice's id.")],
    principal: LiveAdmin,
    session: SessionDep,
) -> HTMLResponse:
    invoice = await invoices.get_local(session, principal.organization_id, invoice_id)
    return HTMLResponse(portal.invoice_page(invoice), headers={"Content-Security-Policy": portal.PAGE_POLICY})


@platform.post(
    "/v1/billing/portal",
    response_model=PortalSession,
    dependencies=[PlatformLimit],
    summary="Open the billing portal (owner)",
    description="Returns the URL of a Stripe Billing Portal session for the organization's Stripe customer "
    "(payment methods, invoices, cancellation), which sends the customer back to STRIPE_PORTAL_RETURN_URL. "
    "Changes made there arrive as Stripe webhooks and are applied from Stripe's state. In local billing mode "
    "the URL is a page of this service's own, valid for 15 minutes. 409 without a Stripe customer yet; 502 "
    "`BILLING_UNAVAILABLE` when Stripe cannot be reached.",
    responses=platform_errors(409, 502),
)
async def billing_portal(
    principal: LiveOwner, session: SessionDep, client: StripeDep, redis: RedisDep, settings: SettingsDep
) -> PortalSession:
    return await portal.create_session(session, client, redis, settings, principal)


@platform.get(
    "/v1/billing/portal/local/{token}",
    response_class=HTMLResponse,
    summary="Local billing mode's portal page",
    description="The page POST /v1/billing/portal links to in local billing mode; its link is the credential, "
    "as a Stripe portal session's is, and it expires after 15 minutes.",
    responses=platform_errors(404),
    dependencies=[Public("a short-lived page reached by the unguessable link POST /v1/billing/portal returned")],
)
async def local_portal(
    token: Annotated[str, Path(pattern=portal.LOCAL_PORTAL_TOKEN_PATTERN)],
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> HTMLResponse:
    page = await portal.local_page(session, redis, settings, token)
    return HTMLResponse(page, headers={"Content-Security-Policy": portal.PAGE_POLICY, "Cache-Control": "no-store"})
