"""Stripe Connect (optional, STRIPE_CONNECT_ENABLED): a Standard connected account per organization,
its onboarding link, and its state kept current from `account.updated` webhooks (fetched from
Stripe, like every other billing object: the event only says which account to look at)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import stripe
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.billing import sync
from backplane.billing.models import ConnectedAccount
from backplane.billing.service import BillingUnavailable
from backplane.core.config import Settings
from backplane.core.errors import InvalidInput, NotFound

logger = logging.getLogger(__name__)

_DISABLED = "Stripe Connect is not enabled on this service."
_NONE_YET = "This organization has no connected account yet. Create one with POST /v1/connect/account."


class ConnectDisabled(NotFound):
    default_message = _DISABLED


def require_enabled(client: stripe.StripeClient | None, settings: Settings) -> stripe.StripeClient:
    if client is None or not settings.stripe.stripe_connect_enabled:
        raise ConnectDisabled()
    return client


def check_redirect(url: str, field: str, settings: Settings) -> None:
    """Onboarding sends the customer to these URLs: only to origins the operator allowed."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if origin not in {o.lower() for o in settings.stripe.connect_origins}:
        raise InvalidInput({field: ["This URL's origin is not in STRIPE_CONNECT_REDIRECT_ALLOWLIST."]})


async def _get(
    session: AsyncSession, organization_id: uuid.UUID, *, for_update: bool = False
) -> ConnectedAccount | None:
    stmt = select(ConnectedAccount).where(ConnectedAccount.organization_id == organization_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def _values(obj: Mapping[str, Any]) -> dict[str, Any]:
    requirements = obj.get("requirements") or {}
    return {
        "charges_enabled": bool(obj.get("charges_enabled")),
        "payouts_enabled": bool(obj.get("payouts_enabled")),
        "details_submitted": bool(obj.get("details_submitted")),
        "requirements": {
            key: requirements.get(key)
            for key in ("currently_due", "eventually_due", "past_due", "pending_verification", "disabled_reason")
        },
        "livemode": bool(obj.get("livemode")),
    }


async def create_onboarding(
    session: AsyncSession,
    client: stripe.StripeClient | None,
    settings: Settings,
    principal: Principal,
    *,
    refresh_url: str,
    return_url: str,
) -> tuple[ConnectedAccount, str, int]:
    """The organization's connected account (created the first time) and an onboarding link: (account,
    url, expires_at)."""
    stripe_client = require_enabled(client, settings)
    check_redirect(refresh_url, "refresh_url", settings)
    check_redirect(return_url, "return_url", settings)
    organization_id = principal.organization_id
    account = await _get(session, organization_id, for_update=True)
    try:
        if account is None:  # concurrent first calls share the idempotency key: one Stripe account
            created = await stripe_client.v1.accounts.create_async(
                params={"type": "standard", "metadata": {"organization_id": str(organization_id)}},
                options={"idempotency_key": f"backplane-connect-{organization_id}"},
            )
            values = _values(created.to_dict())
            stmt = insert(ConnectedAccount).values(
                id=uuid.uuid4(), organization_id=organization_id, stripe_account_id=created.id, **values
            )
            await session.execute(stmt.on_conflict_do_nothing(index_elements=[ConnectedAccount.organization_id]))
            account = await _get(session, organization_id, for_update=True)
            assert account is not None
        link = await stripe_client.v1.account_links.create_async(
            params={
                "account": account.stripe_account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as exc:
        logger.warning("Stripe Connect onboarding of %s failed: %s", organization_id, exc)
        raise BillingUnavailable() from exc
    return account, link.url, int(link.expires_at)


async def current(
    session: AsyncSession, client: stripe.StripeClient | None, settings: Settings, principal: Principal
) -> ConnectedAccount:
    require_enabled(client, settings)
    account = await _get(session, principal.organization_id)
    if account is None:
        raise NotFound(_NONE_YET)
    return account


async def apply_account_event(session: AsyncSession, client: stripe.StripeClient, obj: Mapping[str, Any]) -> None:
    """`account.updated`: fetch the account from Stripe and keep its state (an account not ours is ignored)."""
    account_id = obj.get("id")
    if not isinstance(account_id, str):
        return
    stmt = select(ConnectedAccount).where(ConnectedAccount.stripe_account_id == account_id).with_for_update()
    account = (await session.execute(stmt)).scalar_one_or_none()
    if account is None:
        logger.info("account.updated for %s, which is no organization's connected account", account_id)
        return
    remote = await sync.retrieve(client, "accounts", account_id)
    if remote is None:
        return
    for key, value in _values(remote).items():
        setattr(account, key, value)
    await session.flush()
