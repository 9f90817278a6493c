"""Webhook endpoints: create, change, delete; their deliveries: read, redeliver; a test ping."""

from __future__ import annotations

from functools import partial
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.config import Settings
from backplane.core.crypto import DecryptionFailed, Encryptor
from backplane.core.db import commit, utcnow
from backplane.core.effects import effects
from backplane.core.errors import Conflict, InvalidInput, NotFound
from backplane.core.ids import new_id
from backplane.core.netguard import BlockedTarget, check_target
from backplane.events.repository import EventRepository
from backplane.webhooks import delivery as flow
from backplane.webhooks import repository
from backplane.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from backplane.webhooks.repository import WebhookDeliveryRepository, WebhookEndpointRepository, fail_pending
from backplane.webhooks.schemas import WebhookCreate, WebhookUpdate
from backplane.webhooks.sender import new_client, send
from backplane.webhooks.signing import new_secret

MAX_ENDPOINTS = 20  # per organization and mode, as Stripe caps them (16)


class WebhookLimitReached(Conflict):
    code = "WEBHOOK_LIMIT_REACHED"


class NotRedeliverable(Conflict):
    code = "NOT_REDELIVERABLE"


def new_endpoint_id() -> str:
    return new_id("wh")


def _endpoints(session: AsyncSession, principal: Principal) -> WebhookEndpointRepository:
    return WebhookEndpointRepository(session, principal.organization_id, principal.livemode)


async def checked_url(url: str, settings: Settings, field: str = "url") -> str:
    """Refuse at once what can never be delivered to: not https in production, or a host that is, or
    resolves to, a loopback, private, link-local or metadata address. Each attempt checks again."""
    try:
        await check_target(
            url, allow_private=settings.webhook_allow_private_targets, require_https=settings.is_production
        )
    except BlockedTarget as exc:
        raise InvalidInput({field: [str(exc)]}) from exc
    return url


async def create_endpoint(
    session: AsyncSession, settings: Settings, encryptor: Encryptor, principal: Principal, body: WebhookCreate
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret, in clear this once (it is stored encrypted)."""
    endpoints = _endpoints(session, principal)
    url = await checked_url(body.url, settings)
    if await endpoints.count() >= MAX_ENDPOINTS:
        raise WebhookLimitReached(
            f"An organization can have at most {MAX_ENDPOINTS} webhooks; delete one first.",
            details={"limit": MAX_ENDPOINTS},
        )
    endpoint = WebhookEndpoint(
        id=new_endpoint_id(),
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        url=url,
        events=body.events,
        description=body.description or None,
        enabled=body.enabled,
        ordering=body.ordering,
    )
    secret = new_secret()
    endpoint.set_secret(secret, encryptor)
    endpoints.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    endpoint = await _endpoints(session, principal).get_by_public_id(endpoint_id, for_update=for_update)
    if endpoint is None:
        raise NotFound("No webhook with this id.")
    return endpoint


async def update_endpoint(
    session: AsyncSession, settings: Settings, principal: Principal, endpoint_id: str, body: WebhookUpdate
) -> tuple[WebhookEndpoint, bool]:
    """The endpoint as changed, and whether its circuit closes once this commits."""
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    # Another receiver, or a fresh start: the failures its breaker counted are history.
    receiver_changed = changes.get("enabled") is True and not endpoint.enabled
    if "url" in changes:
        url = await checked_url(changes["url"], settings)
        receiver_changed = receiver_changed or url != endpoint.url
        endpoint.url = url
    if "events" in changes:
        endpoint.events = changes["events"]
    if "ordering" in changes:
        if changes["ordering"] == "none" and endpoint.ordered:
            # Nothing waits for an earlier event any more: what was parked goes now.
            for delivery_id in await repository.unpark(session, endpoint.id, utcnow()):
                flow.wake(session, delivery_id, endpoint.id)
        endpoint.ordering = changes["ordering"]
    if "description" in changes:
        endpoint.description = changes["description"] or None
    if changes.get("enabled") is False and endpoint.enabled:
        await fail_pending(session, endpoint.id)  # the endpoint was found within the organization
    if changes.get("enabled") is True and not endpoint.enabled:
        # A fresh start: the reason it was turned off, and the run of failures, are history.
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
    if receiver_changed:
        flow.close_circuit_once_committed(session, endpoint.id)
    await session.flush()
    return endpoint, receiver_changed


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    """Deletes its deliveries and their attempts too; queued attempts find nothing and stop."""
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    await session.delete(endpoint)
    flow.forget_endpoint_once_committed(session, endpoint.id)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, encryptor: Encryptor, principal: Principal, endpoint_id: str
) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the one it replaces signs too for SECRET_OVERLAP. Rotating again
    within that time ends the older secret's overlap at once: two secrets at most sign a request.
    Returns the endpoint and the new secret, in clear this once."""
    endpoint = await get_endpoint(session, principal, endpoint_id, for_update=True)
    secret = new_secret()
    endpoint.set_secret(secret, encryptor, previous_expires_at=utcnow() + flow.SECRET_OVERLAP)
    await session.flush()
    return endpoint, secret


async def job_webhook_secret(session: AsyncSession, encryptor: Encryptor, principal: Principal) -> str:
    """The organization's secret for jobs' own webhooks in the caller's mode, in clear."""
    encrypted = await flow.job_secret(session, encryptor, principal.organization_id, principal.livemode)
    return encryptor.decrypt_text(encrypted)


class UnreadableSecret(Exception):
    """A stored signing secret that none of ENCRYPTION_KEYS decrypts."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(endpoint_id)
        self.endpoint_id = endpoint_id


async def reencrypt_secrets(session: AsyncSession, encryptor: Encryptor) -> int:
    """Encrypt every stored signing secret (current and previous, and the job-webhook secrets) again with
    the newest key; how many endpoints. All or nothing: raises UnreadableSecret for the first secret no key
    decrypts."""
    count = 0
    async for endpoint in repository.all_endpoints_for_update(session):
        try:
            endpoint.secret_encrypted = encryptor.rotate_text(endpoint.secret_encrypted)
            if endpoint.previous_secret_encrypted is not None:
                endpoint.previous_secret_encrypted = encryptor.rotate_text(endpoint.previous_secret_encrypted)
        except DecryptionFailed:
            raise UnreadableSecret(endpoint.id) from None
        count += 1
    for job_secret in await repository.job_secrets_for_update(session):
        try:
            job_secret.secret_encrypted = encryptor.rotate_text(job_secret.secret_encrypted)
        except DecryptionFailed:
            raise UnreadableSecret(f"job webhooks of organization {job_secret.organization_id}") from None
    await session.flush()
    return count


async def get_delivery(
    session: AsyncSession, principal: Principal, endpoint_id: str, delivery_id: str
) -> tuple[WebhookDelivery, dict[str, Any], list[WebhookAttempt]]:
    """The delivery, the body its attempts send, and its attempts."""
    endpoint = await get_endpoint(session, principal, endpoint_id)
    deliveries = WebhookDeliveryRepository(session, principal.organization_id)
    delivery = await deliveries.get_of_endpoint(endpoint.id, delivery_id)
    if delivery is None:
        raise NotFound("No delivery with this id.")
    event = None
    if delivery.event_id is not None:
        event = await EventRepository(session, principal.organization_id, endpoint.livemode).get_by_public_id(
            delivery.event_id
        )
    body = flow.payload_of(delivery, endpoint, event)
    return delivery, body, await deliveries.attempts(delivery.id)


async def redeliver(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    endpoint_id: str,
    delivery_id: str,
) -> WebhookDelivery:
    """A new delivery of the same event to the same endpoint: one attempt, queued at once."""
    endpoint = await get_endpoint(session, principal, endpoint_id)
    original = await WebhookDeliveryRepository(session, principal.organization_id).get_of_endpoint(
        endpoint.id, delivery_id
    )
    if original is None:
        raise NotFound("No delivery with this id.")
    if original.event_id is None:
        raise NotRedeliverable("A test delivery cannot be redelivered; send another test.")
    if not endpoint.enabled:
        raise NotRedeliverable("This webhook is disabled; enable it before redelivering.")
    event = await EventRepository(session, principal.organization_id, endpoint.livemode).get_by_public_id(
        original.event_id
    )
    assert event is not None  # deliveries go with their event (ON DELETE CASCADE)
    delivery = flow.new_delivery(endpoint, settings, kind="redelivery", event=event, now=utcnow())
    session.add(delivery)
    await session.flush()
    flow.schedule(session, delivery)
    return delivery


async def send_test(
    session: AsyncSession,
    queue: ArqRedis,
    settings: Settings,
    encryptor: Encryptor,
    principal: Principal,
    endpoint_id: str,
) -> tuple[WebhookDelivery, dict[str, Any], WebhookAttempt]:
    """Send a `webhook.test` ping now and wait for the answer (at most WEBHOOK_TIMEOUT_SECONDS).

    Works on a disabled webhook too, so that one can be checked before it is turned on. No
    transaction stays open while the request runs: the read commits first (giving its connection
    back to the pool), and the log is written in a second transaction. A 410 Gone answer disables
    the webhook, as from a delivery; a success closes its circuit (the receiver is back), and the
    deliveries that waited for it go out at once.
    """
    endpoint = await get_endpoint(session, principal, endpoint_id)
    now = utcnow()
    delivery = flow.new_delivery(endpoint, settings, kind="test", event=None, now=now)
    body, headers = flow.build_request(delivery, endpoint, None, now, encryptor)
    url, ping = endpoint.url, flow.payload_of(delivery, endpoint, None)
    await commit(session)
    async with new_client(settings) as client:
        result = await send(client, url, body, headers, settings=settings)
    if result.gone:
        await flow.update_health(session, settings, endpoint.id, "test", result, now)
    if result.succeeded:
        effects(session).call(partial(flow.close_circuit, queue, endpoint.id), "closing the webhook's circuit")
    attempt = flow.apply_result(delivery, 1, result, now, settings)
    session.add(delivery)
    await session.flush()  # before its attempt: without a relationship the two inserts have no set order
    session.add(attempt)
    await session.flush()
    return delivery, ping, attempt
