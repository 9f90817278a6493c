"""`/v1/webhooks`: endpoints (CRUD, secret), test pings, deliveries and redelivery. Admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from redis.asyncio import Redis

from backplane.access.requirements import Admin, Idempotent
from backplane.billing.deps import PlatformLimit
from backplane.core.crypto import EncryptorDep
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, page_params, paginate
from backplane.core.queue import QueueDep
from backplane.core.redis import RedisDep
from backplane.webhooks import recovery, service
from backplane.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookRecovery
from backplane.webhooks.repository import WebhookDeliveryRepository, WebhookEndpointRepository
from backplane.webhooks.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    DeliveryStatus,
    JobWebhookSecretRead,
    RecoveryCreate,
    RecoveryRead,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from backplane.webhooks.slots import Circuit, circuits

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["Webhooks"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)

_SIGNING = (
    "Each delivery is a POST of `{event, type, timestamp, webhook_id, data}` signed twice: "
    "`X-CoExAI-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>` and the Standard "
    "Webhooks headers `webhook-id` (the event id), `webhook-timestamp` and `webhook-signature`. A 2xx answer "
    "within the timeout (10 s) counts as delivered; otherwise the delivery is tried again 5 min, 30 min, 2 h "
    "and 6 h after its first attempt (a little later at random; later still if the answer carried "
    "`Retry-After`), and every attempt is logged. Redirects are not followed. An answer of 410 Gone disables "
    "the webhook at once, and so do 5 days in which every attempt failed; the organization's owners are "
    "emailed and `disabled_reason` says why."
)
_ROTATION = (
    "For 24 hours after a rotation the old secret signs too, so that receivers can switch over without "
    "dropping a delivery: `webhook-signature` then holds two space-separated `v1,<signature>` values (the "
    "`standardwebhooks` library accepts either), and `X-CoExAI-Signature` (always the new secret's) comes "
    "with `X-CoExAI-Signature-Previous: sha256=<hex HMAC-SHA256 with the old secret>`."
)


def _delivery(delivery: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        webhook_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        kind=delivery.kind,
        status=delivery.status,
        attempt_count=delivery.attempt_count,
        max_attempts=delivery.max_attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        created_at=delivery.created_at,
    )


def detail_of(delivery: WebhookDelivery, body: dict[str, Any], attempts: list[WebhookAttempt]) -> DeliveryDetail:
    return DeliveryDetail(
        **_delivery(delivery).model_dump(),
        payload=body,
        attempts=[AttemptRead.model_validate(a) for a in attempts],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Create a webhook",
    description="Subscribes `url` to the listed event types. The response carries the signing `secret`, "
    "shown this once (`POST /v1/webhooks/{id}/rotate-secret` replaces it). The URL must be https in "
    "production, and must neither be nor resolve to a loopback, private, link-local or metadata address; "
    "every delivery checks the address it resolves to again, and follows no redirect. A test-mode API key "
    "creates a test-mode webhook, which receives test-mode events only. " + _SIGNING,
    responses=platform_errors(409),
)
async def create_webhook(
    body: WebhookCreate, principal: Admin, session: SessionDep, settings: SettingsDep, encryptor: EncryptorDep
) -> WebhookCreated:
    endpoint, secret = await service.create_endpoint(session, settings, encryptor, principal, body)
    return WebhookCreated(**WebhookRead.model_validate(endpoint).model_dump(), secret=secret)


@router.get(
    "/default/secret",
    response_model=JobWebhookSecretRead,
    summary="Get the secret that signs jobs' own webhooks",
    description="A job created with `webhook` (`POST /v1/jobs`) has its notifications (`job.started`, "
    "`job.progress`, `job.completed`, `job.failed`, `job.cancelled`) POSTed to that URL, signed like every "
    "webhook with this secret: one per organization and mode, made on first use (Replicate signs its "
    "per-prediction webhooks the same way, with one account secret). The body is "
    "`{event, type, timestamp, webhook_id: null, data}` with the job in `data`. " + _SIGNING,
)
async def get_job_webhook_secret(
    principal: Admin, session: SessionDep, encryptor: EncryptorDep
) -> JobWebhookSecretRead:
    return JobWebhookSecretRead(secret=await service.job_webhook_secret(session, encryptor, principal))


async def _read(redis: Redis, endpoints: list[WebhookEndpoint], closing: set[str] | None = None) -> list[WebhookRead]:
    """The endpoints as their owner sees them, each with its circuit breaker's state (Redis); `closing`:
    the ids whose circuits close once the request's change commits (shown closed already)."""
    found = await circuits(redis, [endpoint.id for endpoint in endpoints])
    read = []
    for endpoint in endpoints:
        circuit = Circuit() if closing and endpoint.id in closing else found.get(endpoint.id, Circuit())
        read.append(
            WebhookRead.model_validate(endpoint).model_copy(
                update={
                    "circuit_state": circuit.state,
                    "consecutive_failures": circuit.consecutive_failures,
                    "circuit_retry_at": circuit.retry_at,
                }
            )
        )
    return read


@router.get("", response_model=Page[WebhookRead], summary="List webhooks", description="Newest first.")
async def list_webhooks(
    principal: Admin, session: SessionDep, redis: RedisDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[WebhookRead]:
    stmt = WebhookEndpointRepository(session, principal.organization_id, principal.livemode).select()
    rows, cursor = await paginate(session, stmt, page, WebhookEndpoint.created_at, WebhookEndpoint.id)
    data = await _read(redis, [r[0] for r in rows])
    return Page(data=data, has_more=cursor is not None, next_cursor=cursor)


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Get a webhook",
    description="With `circuit_state`: whether its deliveries go out, or wait after failing attempts in a row "
    "until `circuit_retry_at`.",
)
async def get_webhook(webhook_id: str, principal: Admin, session: SessionDep, redis: RedisDep) -> WebhookRead:
    [read] = await _read(redis, [await service.get_endpoint(session, principal, webhook_id)])
    return read


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Change a webhook",
    description="Only the fields given change. Disabling a webhook (`enabled: false`) also ends its "
    "deliveries still waiting for a retry, as `failed`; they can be redelivered once it is enabled again. "
    "Enabling a webhook the platform disabled clears `disabled_reason`.",
)
async def update_webhook(
    webhook_id: str, body: WebhookUpdate, principal: Admin, session: SessionDep, settings: SettingsDep, redis: RedisDep
) -> WebhookRead:
    endpoint, circuit_closes = await service.update_endpoint(session, settings, principal, webhook_id, body)
    [read] = await _read(redis, [endpoint], closing={endpoint.id} if circuit_closes else set())
    return read


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook",
    description="Its deliveries and their log go with it; the events stay readable at `/v1/events`.",
)
async def delete_webhook(webhook_id: str, principal: Admin, session: SessionDep) -> None:
    await service.delete_endpoint(session, principal, webhook_id)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Rotate a webhook's signing secret",
    description="Answers with a new `secret`, shown this once; it signs every request from now on, "
    "retries included. " + _ROTATION + " Rotating again within the 24 hours ends the older secret's overlap.",
)
async def rotate_webhook_secret(
    webhook_id: str, principal: Admin, session: SessionDep, encryptor: EncryptorDep
) -> SecretRotated:
    endpoint, secret = await service.rotate_secret(session, encryptor, principal, webhook_id)
    assert endpoint.previous_secret_expires_at is not None
    return SecretRotated(secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryDetail,
    summary="Send a test event",
    description="POSTs a signed `webhook.test` event to the webhook now and answers with the logged attempt: "
    "`status` is `succeeded` when the endpoint answered 2xx, else `failed` with the status code or the error "
    "(no answer, timed out, address refused). It is one attempt, never retried, and works on a disabled "
    "webhook too (an answer of 410 Gone disables it all the same). It goes out whatever the webhook's "
    "`circuit_state`, and a success closes an open circuit: the deliveries that waited for it are sent at once. "
    + _SIGNING,
)
async def test_webhook(
    webhook_id: str,
    principal: Admin,
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueDep,
    encryptor: EncryptorDep,
) -> DeliveryDetail:
    delivery, body, attempt = await service.send_test(session, queue, settings, encryptor, principal, webhook_id)
    return detail_of(delivery, body, [attempt])


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    summary="List a webhook's deliveries",
    description="Newest first; filter by `status` or `event_id`. A delivery's attempts are in its details.",
)
async def list_deliveries(
    webhook_id: str,
    principal: Admin,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_id: Annotated[str | None, Query(max_length=64, pattern=r"^evt_[0-9a-f]+$")] = None,
) -> Page[DeliveryRead]:
    endpoint = await service.get_endpoint(session, principal, webhook_id)
    stmt = WebhookDeliveryRepository(session, principal.organization_id).of_endpoint(endpoint.id)
    if delivery_status is not None:
        stmt = stmt.where(WebhookDelivery.status == delivery_status)
    if event_id is not None:
        stmt = stmt.where(WebhookDelivery.event_id == event_id)
    rows, cursor = await paginate(session, stmt, page, WebhookDelivery.created_at, WebhookDelivery.id)
    return Page(data=[_delivery(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="Get a delivery with its attempts",
    description="The body every attempt sends, and each attempt: when, the status code, the first 2 KB of "
    "the answer or the error, and how long it took.",
)
async def get_delivery(webhook_id: str, delivery_id: str, principal: Admin, session: SessionDep) -> DeliveryDetail:
    return detail_of(*await service.get_delivery(session, principal, webhook_id, delivery_id))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    summary="Redeliver an event",
    description="Queues a new delivery (`kind: redelivery`) of the same event to this webhook: one attempt, "
    "at once, signed anew; `webhook-id` stays the event id, so a receiver that already has the event can "
    "tell. Use it for deliveries that failed after their last retry. 409 for a test delivery or a disabled "
    "webhook.",
    responses=platform_errors(409),
)
async def redeliver(
    webhook_id: str, delivery_id: str, principal: Admin, session: SessionDep, settings: SettingsDep
) -> DeliveryRead:
    return _delivery(await service.redeliver(session, settings, principal, webhook_id, delivery_id))


async def _recovery(session: SessionDep, found: WebhookRecovery) -> RecoveryRead:
    return RecoveryRead(
        id=found.id,
        webhook_id=found.endpoint_id,
        since=found.since,
        until=found.until,
        status=found.status,
        stopped_reason=found.stopped_reason,
        events_total=found.events_total,
        events_sent=found.events_sent,
        deliveries=await recovery.delivery_counts(session, found),
        created_at=found.created_at,
        finished_at=found.finished_at,
    )


@router.post(
    "/{webhook_id}/recover",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RecoveryRead,
    summary="Recover the events a webhook missed",
    description="Sends again, as one background operation, every event created in [`since`, `until`) "
    "(default until: now) that this webhook subscribes to and did not receive (no successful delivery): "
    "once each, oldest first, one after another, signed and retried like every delivery (`kind: recovery`). "
    "A delivery of such an event still waiting for a retry is ended (`failed`): the recovery sends it instead. "
    "If a first attempt fails, the operation stops there (`stopped`; that delivery keeps its retries) so that "
    "the order holds; recover again once the receiver answers. Read the progress at "
    "`GET /v1/webhooks/{id}/recoveries/{recovery_id}`. 409 while another recovery of this webhook runs, or "
    "for a disabled webhook.",
    responses=platform_errors(409),
)
async def recover(webhook_id: str, body: RecoveryCreate, principal: Admin, session: SessionDep) -> RecoveryRead:
    endpoint = await service.get_endpoint(session, principal, webhook_id)
    started = await recovery.start(session, principal, endpoint, body.since, body.until)
    return await _recovery(session, started)


@router.get(
    "/{webhook_id}/recoveries/{recovery_id}",
    response_model=RecoveryRead,
    summary="Get a recovery's progress",
    description="How many events the window had, how many were sent, and the deliveries by status.",
)
async def get_recovery(webhook_id: str, recovery_id: str, principal: Admin, session: SessionDep) -> RecoveryRead:
    endpoint = await service.get_endpoint(session, principal, webhook_id)
    return await _recovery(session, await recovery.get(session, principal, endpoint, recovery_id))
