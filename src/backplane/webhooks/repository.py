from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backplane.auth.models import User
from backplane.core.db import insert_rows
from backplane.core.ids import is_id
from backplane.core.tenancy import LivemodeRepository, TenantRepository
from backplane.events.models import Event
from backplane.organizations.models import Membership, Role
from backplane.webhooks.models import JobWebhookSecret, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointRepository(LivemodeRepository[WebhookEndpoint]):
    """Endpoints of one organization and one mode: a test-mode key manages test-mode endpoints only."""

    model = WebhookEndpoint
    id_prefix = "wh"

    async def count(self) -> int:
        stmt = select(func.count()).select_from(self.select().subquery())
        return int((await self.session.execute(stmt)).scalar_one())


class WebhookDeliveryRepository(TenantRepository[WebhookDelivery]):
    """Deliveries of one organization (an endpoint's mode is its deliveries' mode)."""

    model = WebhookDelivery

    def of_endpoint(self, endpoint_id: str) -> Select[WebhookDelivery]:
        return self.select().where(WebhookDelivery.endpoint_id == endpoint_id)

    def of_job(self, job_id: str) -> Select[WebhookDelivery]:
        """A job's notifications to its own webhook."""
        return self.select().where(WebhookDelivery.job_id == job_id, WebhookDelivery.kind == "job")

    async def get_of_endpoint(self, endpoint_id: str, delivery_id: str) -> WebhookDelivery | None:
        if not is_id(delivery_id, "whd"):
            return None
        stmt = self.of_endpoint(endpoint_id).where(WebhookDelivery.id == delivery_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def attempts(self, delivery_id: str) -> list[WebhookAttempt]:
        stmt = (
            select(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.organization_id == self.organization_id, WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.number)
        )
        return list((await self.session.execute(stmt)).scalars())


# The worker's reads below start from the outbox or from a queued delivery id, before any
# organization is known (as API-key authentication does); what they find carries its organization.


async def all_endpoints_for_update(session: AsyncSession, batch: int = 500) -> AsyncIterator[WebhookEndpoint]:
    """Every endpoint of every organization, locked (for re-encrypting their secrets), in batches."""
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id).with_for_update().execution_options(yield_per=batch)
    async for endpoint in await session.stream_scalars(stmt):
        yield endpoint


async def job_secrets_for_update(session: AsyncSession) -> list[JobWebhookSecret]:
    """Every organization's job-webhook secrets, locked (for re-encrypting them)."""
    stmt = select(JobWebhookSecret).order_by(JobWebhookSecret.organization_id).with_for_update()
    return list((await session.execute(stmt)).scalars())


async def active_endpoints_of(session: AsyncSession, organization_ids: Iterable[uuid.UUID]) -> list[WebhookEndpoint]:
    found = await session.execute(_active_endpoints(), {"organizations": list(set(organization_ids))})
    return list(found.scalars())


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New deliveries from their columns, in one statement whatever their number (`insert_rows`: no
    ORM object each, and not SQLAlchemy's executemany, which PostgreSQL runs as a statement a row)."""
    await insert_rows(session, WebhookDelivery.__table__, rows)  # type: ignore[arg-type]


async def lock_for_attempt(
    session: AsyncSession, delivery_ids: list[str]
) -> list[tuple[WebhookDelivery, WebhookEndpoint | None, Event | None, JobWebhookSecret | None]]:
    """These deliveries (locked; those another worker holds are left out), each with its endpoint and
    its event, or (a job's own webhook, kind `job`) the secret that signs it."""
    rows = (await session.execute(_for_attempt(), {"ids": delivery_ids})).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


async def lease_deliveries(session: AsyncSession, delivery_ids: list[str], until: datetime) -> None:
    """Claimed deliveries are not due again before `until` (their attempt's lease), in one UPDATE."""
    await session.execute(_lease(), {"ids": delivery_ids, "lease_until": until})


async def lock_endpoints(session: AsyncSession, endpoint_ids: list[str]) -> None:
    """Lock these endpoints in id order, as the API does before it touches their deliveries (FOR NO KEY
    UPDATE: the dispatcher may still insert deliveries that reference them)."""
    await session.execute(_endpoints_locked(), {"ids": endpoint_ids})


async def lock_deliveries(session: AsyncSession, delivery_ids: list[str]) -> dict[str, WebhookDelivery]:
    """These deliveries by id, locked in id order (those deleted meanwhile are missing)."""
    locked = await session.execute(_deliveries_locked(), {"ids": delivery_ids})
    return {delivery.id: delivery for delivery in locked.scalars()}


# The four statements above run for every batch of attempts a worker makes, so each is built once,
# its values bound at execution: building an ORM statement cost more CPU than PostgreSQL's answer to
# it (about 0.4 ms here for a select, and its cache key 0.1 to 0.2 ms more, which a statement built
# once keeps), and a paced worker's batches are of a few deliveries.

# A list of ids as one array parameter (`= ANY(:ids)`): one statement text whatever the length, which
# the driver prepares once.
_IDS = bindparam("ids", type_=ARRAY(String))


@functools.cache
def _active_endpoints() -> Select[WebhookEndpoint]:
    organizations = bindparam("organizations", type_=ARRAY(WebhookEndpoint.organization_id.type))
    return select(WebhookEndpoint).where(
        WebhookEndpoint.organization_id == any_(organizations), WebhookEndpoint.enabled.is_(True)
    )


@functools.cache
def _for_attempt() -> Select[WebhookDelivery, WebhookEndpoint, Event, JobWebhookSecret]:
    return (
        select(WebhookDelivery, WebhookEndpoint, Event, JobWebhookSecret)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .outerjoin(Event, Event.id == WebhookDelivery.event_id)
        .outerjoin(
            JobWebhookSecret,
            and_(
                WebhookDelivery.kind == "job",
                JobWebhookSecret.organization_id == WebhookDelivery.organization_id,
                JobWebhookSecret.livemode == WebhookDelivery.livemode,
            ),
        )
        .where(WebhookDelivery.id == any_(_IDS))
        .order_by(WebhookDelivery.id)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )


@functools.cache
def _lease() -> Update:
    return (
        update(WebhookDelivery)
        .where(WebhookDelivery.id == any_(_IDS))
        .values(next_attempt_at=bindparam("lease_until"))
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _endpoints_locked() -> Select[str]:
    return (
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.id == any_(_IDS))
        .order_by(WebhookEndpoint.id)
        .with_for_update(key_share=True)
    )


@functools.cache
def _deliveries_locked() -> Select[WebhookDelivery]:
    return (
        select(WebhookDelivery).where(WebhookDelivery.id == any_(_IDS)).order_by(WebhookDelivery.id).with_for_update()
    )


# Delivered attempts, a batch in one statement: each delivery (locked in id order, as `lock_deliveries`
# does) ends as succeeded, and its attempt is logged, for those that still exist. Arrays rather than a
# VALUES list: one statement text whatever the batch's size, prepared once by the driver.
_LOG_DELIVERED = text("""
WITH answered AS (
    SELECT * FROM unnest(:ids, :numbers, :attempted_at, :status_codes, :bodies, :durations)
        AS a(id, number, attempted_at, status_code, response_body, duration_ms)
), locked AS (
    SELECT d.id FROM webhook_deliveries AS d WHERE d.id = ANY(:ids) ORDER BY d.id FOR UPDATE
), ended AS (
    UPDATE webhook_deliveries AS d
    SET status = 'succeeded', next_attempt_at = NULL, attempt_count = a.number, last_attempt_at = a.attempted_at,
        last_status_code = a.status_code, schedule_start_at = coalesce(d.schedule_start_at, a.attempted_at)
    FROM answered AS a JOIN locked AS l ON l.id = a.id
    WHERE d.id = a.id
    RETURNING d.id
)
INSERT INTO webhook_attempts
    (id, delivery_id, number, attempted_at, succeeded, status_code, response_body, error, duration_ms)
SELECT gen_random_uuid(), a.id, a.number, a.attempted_at, true, a.status_code, a.response_body, NULL, a.duration_ms
FROM answered AS a JOIN ended AS e ON e.id = a.id
RETURNING delivery_id
""").bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("numbers", type_=ARRAY(SmallInteger)),
    bindparam("attempted_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("status_codes", type_=ARRAY(SmallInteger)),
    bindparam("bodies", type_=ARRAY(Text)),
    bindparam("durations", type_=ARRAY(Integer)),
)

Delivered = tuple[str, int, datetime, int | None, str | None, int]  # id, number, at, status, body, ms


async def log_delivered(session: AsyncSession, delivered: list[Delivered]) -> set[str]:
    """End these deliveries as succeeded and log their attempts (id, attempt number, when, HTTP status,
    the answer's start, duration in ms); the ids of those that still existed."""
    ids, numbers, attempted_at, status_codes, bodies, durations = (
        list(column) for column in zip(*delivered, strict=True)
    )
    result = await session.execute(
        _LOG_DELIVERED,
        {
            "ids": ids,
            "numbers": numbers,
            "attempted_at": attempted_at,
            "status_codes": status_codes,
            "bodies": bodies,
            "durations": durations,
        },
    )
    return set(result.scalars())


async def overdue(
    session: AsyncSession, before: datetime, limit: int, *, per_target: int
) -> list[tuple[str, str | None, int, str | None]]:
    """(id, endpoint id, attempts made, url) of pending deliveries whose next attempt should have run
    before `before` (the url: a job's own webhook's, which has no endpoint), oldest first, at most
    `per_target` of one endpoint (or one job webhook URL)."""
    target = func.coalesce(WebhookDelivery.endpoint_id, WebhookDelivery.url)
    rank = func.row_number().over(partition_by=target, order_by=WebhookDelivery.next_attempt_at).label("rank")
    ranked = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.attempt_count,
            WebhookDelivery.url,
            WebhookDelivery.next_attempt_at,
            rank,
        )
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < before)
        .subquery()
    )
    stmt = (
        select(ranked.c.id, ranked.c.endpoint_id, ranked.c.attempt_count, ranked.c.url)
        .where(ranked.c.rank <= per_target)
        .order_by(ranked.c.next_attempt_at)
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in (await session.execute(stmt)).all()]


# An endpoint's health. Plain UPDATEs: they lock the row as FOR NO KEY UPDATE, which does not hold
# up the dispatcher inserting deliveries that reference it. `updated_at` keeps its value: it tells
# when an admin last changed the endpoint.


async def mark_failing(session: AsyncSession, endpoint_id: str, now: datetime) -> datetime | None:
    """Start the endpoint's run of failures at `now` unless one is running; when it started."""
    stmt = (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(failing_since=func.coalesce(WebhookEndpoint.failing_since, now), updated_at=WebhookEndpoint.updated_at)
        .returning(WebhookEndpoint.failing_since)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_healthy(session: AsyncSession, endpoint_id: str) -> None:
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_not(None))
        .values(failing_since=None, updated_at=WebhookEndpoint.updated_at)
        .execution_options(synchronize_session=False)
    )


async def disable(session: AsyncSession, endpoint_id: str, reason: str, now: datetime) -> WebhookEndpoint | None:
    """Turn an enabled endpoint off, saying why; the endpoint, or None if it was off (or gone) already,
    so that only one of several concurrent attempts does it."""
    stmt = (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason[:500], disabled_at=now, updated_at=now)
        .returning(WebhookEndpoint)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def fail_pending(session: AsyncSession, endpoint_id: str) -> None:
    """The endpoint's deliveries still waiting for an attempt end as failed."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="failed", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )


async def unpark(session: AsyncSession, endpoint_id: str, now: datetime) -> list[str]:
    """Make due at `now` the endpoint's deliveries parked behind an earlier one (webhooks/ordering.py)."""
    stmt = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at.is_(None),
        )
        .values(next_attempt_at=now)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return list((await session.execute(stmt)).scalars())


async def owner_emails(session: AsyncSession, organization_id: uuid.UUID) -> list[str]:
    """The addresses of the organization's active owners."""
    stmt = (
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.organization_id == organization_id,
            Membership.role == Role.owner.value,
            User.is_active.is_(True),
        )
        .order_by(Membership.created_at)
    )
    return list((await session.execute(stmt)).scalars())


def delivery_success(delivered: bool) -> ColumnElement[bool]:
    """A filter on events: True for those every endpoint has received (at least one delivery each
    succeeded), False for those some endpoint has not, after its delivery failed for good. Events still
    being retried, or never sent to any endpoint, match neither."""
    sent = aliased(WebhookDelivery)
    succeeded = aliased(WebhookDelivery)
    received = (
        select(succeeded.id)
        .where(
            succeeded.event_id == Event.id,
            succeeded.endpoint_id == sent.endpoint_id,
            succeeded.status == "succeeded",
        )
        .exists()
    )
    if not delivered:
        return select(sent.id).where(sent.event_id == Event.id, sent.status == "failed", ~received).exists()
    any_sent = select(sent.id).where(sent.event_id == Event.id).exists()
    missing = select(sent.id).where(sent.event_id == Event.id, ~received).exists()
    return and_(any_sent, ~missing)
