"""The operator's commands beyond staff and licenses: `users find`, `orgs show`, `jobs retry`,
`jobs dead-letters`, `webhooks replay`, `agents maintenance`, `billing sync` and `check`.

Each opens the stores it needs (`Stores`), does its work in one unit of work through the domains'
own functions, and answers a JSON-ready dict; the two that change something (retry, replay) are
recorded as staff actions by `cli:<the OS user>`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backplane.access.principal import Principal
from backplane.billing import quota
from backplane.billing.service import current as current_subscription
from backplane.billing.service import plan_of
from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from backplane.core.errors import AppError
from backplane.core.queue import create_queue
from backplane.core.redis import create_redis
from backplane.jobs import lifecycle, maintenance
from backplane.jobs import service as jobs
from backplane.jobs.models import Job
from backplane.jobs.schemas import JobRead
from backplane.licenses.leases import Leases
from backplane.licenses.service import license_read
from backplane.organizations.models import Organization
from backplane.organizations.repository import OrganizationRepository
from backplane.staff import repository
from backplane.staff import service as staff
from backplane.staff.commands import CommandFailed, cli_actor
from backplane.webhooks import delivery as webhook_delivery


class NotFoundFailure(CommandFailed):
    """Nothing has the id or email given (exit 1)."""


@dataclass
class Stores:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    queue: ArqRedis
    sessionmaker: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def stores(settings: Settings) -> AsyncIterator[Stores]:
    engine = create_engine(settings)
    redis = create_redis(settings)
    queue = create_queue(settings.redis.url)
    try:
        yield Stores(settings, engine, redis, queue, create_sessionmaker(engine, redis=redis, queue=queue))
    finally:
        await queue.aclose(close_connection_pool=True)
        await redis.aclose()
        await engine.dispose()


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- reads --------------------------------------------------------------------------------------


async def find_user(settings: Settings, email: str) -> dict[str, Any]:
    async with stores(settings) as s, unit_of_work(s.sessionmaker) as session:
        found = await repository.user_with_organizations(session, email)
        if found is None:
            raise NotFoundFailure(f"no user has the email address {email!r}")
        user, memberships = found
        return {
            "id": str(user.id),
            "email": user.email,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "is_staff": user.is_staff,
            "email_verified": user.email_verified_at is not None,
            "created_at": _time(user.created_at),
            "organizations": [
                {"id": str(organization.id), "name": organization.name, "role": role}
                for organization, role in memberships
            ],
        }


async def show_organization(settings: Settings, organization_id: uuid.UUID) -> dict[str, Any]:
    async with stores(settings) as s, unit_of_work(s.sessionmaker) as session:
        organization = await OrganizationRepository(session).get_by_id(organization_id)
        if organization is None:
            raise NotFoundFailure(f"no organization has the id {organization_id}")
        plan = await plan_of(session, s.redis, settings, organization_id)
        subscription = await current_subscription(session, organization_id)
        now = utcnow()
        month_start, _ = quota.period_bounds(now)
        jobs_by_status = await repository.job_counts_since(session, organization_id, month_start)
        leases = Leases(s.redis)
        owned = await repository.licenses_of(session, organization_id)
        live = await leases.live_counts([license_.id for license_ in owned])
        licenses = [
            license_read(license_, seats_in_use=live[license_.id]).model_dump(mode="json") for license_ in owned
        ]
        return {
            "id": str(organization.id),
            "name": organization.name,
            "slug": organization.slug,
            "created_at": _time(organization.created_at),
            "plan": {
                "name": str(plan.name),
                "jobs_per_month": plan.jobs_per_month,
                "concurrent_jobs": plan.concurrent_jobs,
                "requests_per_minute": plan.requests_per_minute,
            },
            "subscription": None
            if subscription is None
            else {
                "plan": subscription.plan,
                "status": subscription.status,
                "seats": subscription.seats,
                "current_period_end": _time(subscription.current_period_end),
                "cancel_at_period_end": subscription.cancel_at_period_end,
            },
            "usage": {
                "month_start": _time(month_start),
                "jobs_created": sum(jobs_by_status.values()),
                "jobs_by_status": dict(sorted(jobs_by_status.items())),
                "jobs_counted_by_quota": await quota.used(s.redis, organization_id, now),
            },
            "licenses": licenses,
            "live_seats": sum(shown["seats_in_use"] or 0 for shown in licenses),
        }


def _job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "organization_id": str(job.organization_id),
        "agent_id": job.agent_id,
        "status": job.status,
        "attempts": job.attempts,
        "livemode": job.livemode,
        "error": job.error,
        "created_at": _time(job.created_at),
        "finished_at": _time(job.finished_at),
    }


async def dead_letters(settings: Settings, organization_id: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
    async with stores(settings) as s, unit_of_work(s.sessionmaker) as session:
        if organization_id is not None and await OrganizationRepository(session).get_by_id(organization_id) is None:
            raise NotFoundFailure(f"no organization has the id {organization_id}")
        return [_job_summary(job) for job in await repository.dead_letters(session, organization_id, limit)]


# --- repairs ------------------------------------------------------------------------------------


def _acting_in(organization: Organization | None, livemode: bool) -> Principal:
    """The operator acting in the job's organization and mode, as platform staff."""
    return Principal(
        user=None, api_key=None, organization=organization, role=None, scopes=frozenset(), livemode=livemode,
        is_staff=True,
    )  # fmt: skip


async def retry_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """A failed or dead-lettered job queued again from its first attempt (`POST /v1/jobs/{id}/retry`)."""
    from backplane.agents import registry as agents

    agents.load(test_agents=settings.agent_test_mode)
    async with stores(settings) as s:
        async with unit_of_work(s.sessionmaker) as session:
            job = await repository.find_job(session, job_id)
            if job is None:
                raise NotFoundFailure(f"no job has the id {job_id!r}")
            previous_status = job.status
            organization = await OrganizationRepository(session).get_by_id(job.organization_id)
            plan = await plan_of(session, s.redis, settings, job.organization_id)
            dispatcher = lifecycle.Dispatcher(s.sessionmaker, s.redis, s.queue, settings)
            context = jobs.JobsContext(settings, s.redis, dispatcher, plan)
            try:
                retried = await jobs.retry(session, context, _acting_in(organization, job.livemode), job_id)
            except AppError as exc:
                raise CommandFailed(f"job {job_id}: {exc.message}") from None
            staff.record(
                session,
                cli_actor(),
                "job.retry",
                organization_id=job.organization_id,
                target_id=job_id,
                details={"previous_status": previous_status},
            )
            shown = JobRead.model_validate(lifecycle.job_data(retried)).model_dump(mode="json")  # as the API shows it
        return shown


async def replay_webhook(settings: Settings, endpoint_id: str, since: datetime) -> dict[str, Any]:
    """A new delivery, queued at once, of every event since `since` that the endpoint subscribes to."""
    async with stores(settings) as s, unit_of_work(s.sessionmaker) as session:
        endpoint = await repository.find_endpoint(session, endpoint_id)
        if endpoint is None:
            raise NotFoundFailure(f"no webhook endpoint has the id {endpoint_id!r}")
        if not endpoint.enabled:
            raise CommandFailed(f"webhook {endpoint_id} is disabled; enable it before replaying")
        now = utcnow()
        events = [
            event for event in await repository.events_for(session, endpoint, since) if endpoint.wants(event.type)
        ]
        deliveries = []
        for event in events:
            delivery = webhook_delivery.new_delivery(endpoint, settings, kind="redelivery", event=event, now=now)
            session.add(delivery)
            deliveries.append(delivery)
        await session.flush()
        for delivery in deliveries:
            webhook_delivery.schedule(session, delivery)
        staff.record(
            session,
            cli_actor(),
            "webhook.replay",
            organization_id=endpoint.organization_id,
            target_id=endpoint.id,
            details={"since": since.isoformat(), "events": len(events)},
        )
        return {
            "endpoint_id": endpoint.id,
            "since": since.isoformat(),
            "deliveries": [{"id": d.id, "event_id": d.event_id} for d in deliveries],
        }


# --- check --------------------------------------------------------------------------------------


async def _timed(name: str, probe: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await probe()
        ok = True
    except Exception as exc:  # every failure is an answer here, never a traceback
        detail, ok = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, False
    return {"name": name, "ok": ok, "detail": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}


async def billing_sync(settings: Settings, organization_id: uuid.UUID | None) -> dict[str, Any]:
    """Reconcile subscriptions with Stripe (all, or one organization's): what was checked and repaired."""
    from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
    from backplane.billing.sync import reconcile_all

    client = create_stripe_client(settings.stripe)
    try:
        async with stores(settings) as s:
            results = await reconcile_all(s.sessionmaker, client, s.redis, settings, organization_id)
    finally:
        await close_stripe_client(client)
    return {
        "checked": len(results),
        "repaired": sum(bool(r["repaired"]) for r in results),
        "failed": sum("error" in r for r in results),
        "note": "local billing mode: nothing to compare" if client is None else None,
        "subscriptions": results,
    }


async def check(settings: Settings) -> list[dict[str, Any]]:
    """Configuration (already loaded and valid), PostgreSQL and its migrations, Redis, storage, Stripe."""
    from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
    from backplane.files.storage import create_storage

    results = [{"name": "configuration", "ok": True, "detail": f"ENVIRONMENT={settings.environment}", "ms": 0.0}]
    async with stores(settings) as s:

        async def database() -> str:
            async with s.engine.connect() as connection:
                version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            head = _migration_head()
            if version != head:
                raise RuntimeError(f"at migration {version}, this version needs {head}: run `backplane migrate`")
            return f"reachable, at migration {version}"

        async def redis() -> str:
            await s.redis.ping()
            return "reachable"

        async def storage() -> str:
            store = await create_storage(settings)
            key = f".backplane-check/{secrets.token_hex(8)}"
            try:
                writer = await store.writer(key)
                await writer.write(b"check")
                await writer.commit()
                if not await store.exists(key):
                    raise RuntimeError(f"{key} written but not found")
                await store.delete(key)
            finally:
                await store.aclose()
            return f"S3 bucket {settings.s3.bucket}" if settings.s3.enabled else f"writable: {settings.storage_dir}"

        async def stripe() -> str:
            client = create_stripe_client(settings.stripe)
            if client is None:
                return "not configured (local billing mode)"
            try:
                await client.v1.balance.retrieve_async()
            finally:
                await close_stripe_client(client)
            return "reachable, the secret key accepted"

        for name, probe in (("database", database), ("redis", redis), ("storage", storage), ("stripe", stripe)):
            results.append(await _timed(name, probe))
    return results


def _migration_head() -> str | None:
    from alembic.script import ScriptDirectory

    from backplane.cli import _alembic_config

    return ScriptDirectory.from_config(_alembic_config("")).get_current_head()


async def agent_maintenance(settings: Settings, agent_id: str, on: bool, reason: str | None) -> dict[str, Any]:
    """Start or end an agent's maintenance (recorded as a staff action); ending it dispatches the
    organizations whose jobs waited for it."""
    from backplane.agents import registry as agents

    agents.load(test_agents=settings.agent_test_mode)
    async with stores(settings) as s:
        organizations: list[uuid.UUID] = []
        async with unit_of_work(s.sessionmaker) as session:
            try:
                if on:
                    assert reason is not None
                    state = await maintenance.start(session, agent_id, reason, cli_actor())
                else:
                    state, organizations = await maintenance.end(session, agent_id, cli_actor())
            except AppError as exc:
                raise NotFoundFailure(f"agent {agent_id!r}: {exc.message}") from None
        dispatcher = lifecycle.Dispatcher(s.sessionmaker, s.redis, s.queue, settings)
        dispatched = 0
        for organization_id in organizations:  # else the sweeper does it within seconds
            dispatched += len(await dispatcher.dispatch(organization_id))
    return {
        "agent_id": state.agent_id,
        "status": "maintenance" if state.maintenance else "available",
        "reason": state.reason,
        "since": _time(state.since),
        "jobs_dispatched": dispatched,
    }
