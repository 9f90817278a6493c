"""Stripe Connect (platform surface) and its webhook endpoint (licensing surface, beside Stripe's other one).
Off unless STRIPE_CONNECT_ENABLED: the routes then answer 404."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from backplane.access.requirements import LiveAdmin, LiveOwner, Public
from backplane.billing import connect, webhooks
from backplane.billing.deps import PlatformLimit
from backplane.billing.endpoints import StripeDep
from backplane.billing.models import ConnectedAccount
from backplane.billing.schemas import (
    ConnectAccountCreate,
    ConnectAccountRead,
    ConnectOnboarding,
    ConnectRequirements,
    WebhookAck,
)
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors, platform_errors

platform = APIRouter(prefix="/v1/connect", tags=["Stripe Connect"], responses=platform_errors(401, 403, 404, 429))
connect_webhooks = APIRouter(prefix="/api/v1/webhooks", tags=["Stripe webhooks"])


def _read(account: ConnectedAccount) -> ConnectAccountRead:
    return ConnectAccountRead(
        id=account.stripe_account_id,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        details_submitted=account.details_submitted,
        requirements=ConnectRequirements(**(account.requirements or {})),
        livemode=account.livemode,
        updated_at=account.updated_at,
    )


@platform.post(
    "/account",
    response_model=ConnectOnboarding,
    dependencies=[PlatformLimit],
    summary="Create the organization's connected account and an onboarding link (owner)",
    description="Creates a Standard Stripe connected account for the organization the first time (later calls "
    "reuse it) and returns an `account_onboarding` link that sends the user back to `return_url`, or to "
    "`refresh_url` once expired; both must be on an origin in STRIPE_CONNECT_REDIRECT_ALLOWLIST (422 otherwise). "
    "404 unless STRIPE_CONNECT_ENABLED; 502 `BILLING_UNAVAILABLE` when Stripe cannot be reached.",
    responses=platform_errors(422, 502),
)
async def create_account(
    body: ConnectAccountCreate, principal: LiveOwner, session: SessionDep, client: StripeDep, settings: SettingsDep
) -> ConnectOnboarding:
    account, url, expires_at = await connect.create_onboarding(
        session, client, settings, principal, refresh_url=str(body.refresh_url), return_url=str(body.return_url)
    )
    await session.refresh(account)
    return ConnectOnboarding(
        account=_read(account), onboarding_url=url, expires_at=datetime.fromtimestamp(expires_at, UTC)
    )


@platform.get(
    "/account",
    response_model=ConnectAccountRead,
    dependencies=[PlatformLimit],
    summary="The organization's connected account (owner, admin)",
    description="`charges_enabled`, `payouts_enabled` and the requirements Stripe still has, kept current by "
    "`account.updated` webhooks. 404 before one is created, or unless STRIPE_CONNECT_ENABLED.",
)
async def get_account(
    principal: LiveAdmin, session: SessionDep, client: StripeDep, settings: SettingsDep
) -> ConnectAccountRead:
    return _read(await connect.current(session, client, settings, principal))


@connect_webhooks.post(
    "/stripe/connect/",
    response_model=WebhookAck,
    summary="Stripe Connect webhooks",
    description="The Connect endpoint's events, verified with STRIPE_CONNECT_WEBHOOK_SECRET (tolerance 300 s); "
    "`account.updated` refreshes the connected account from Stripe. Each event id is applied once.",
    responses=licensing_errors(400, 502),
    dependencies=[Public("Stripe; the Stripe-Signature header is verified")],
)
async def stripe_connect_webhook(
    request: Request, session: SessionDep, client: StripeDep, settings: SettingsDep
) -> WebhookAck:
    payload = await request.body()
    event = webhooks.verify(payload, request.headers.get("stripe-signature"), settings, connect=True)
    processed = await webhooks.process_connect(session, client, event)
    return WebhookAck(received=True, duplicate=not processed)
