"""`jobs.sweep`, an arq cron job on every worker (one run per tick across them all): recovers what
dead workers and lost messages left behind, and dispatches waiting jobs whose backoff has passed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.jobs import lifecycle
from backplane.jobs.models import Job, JobStatus

logger = logging.getLogger(__name__)

SWEEP_TASK = "jobs.sweep"


async def sweep_task(ctx: dict[str, Any]) -> dict[str, int]:
    return await sweep(ctx["dispatcher"])


async def sweep(dispatcher: lifecycle.Dispatcher) -> dict[str, int]:
    """Recover stalled and lost runs, then dispatch every organization with waiting, ready jobs."""
    settings = dispatcher.settings
    now = utcnow()
    stalled = lost = 0
    async with unit_of_work(dispatcher.sessionmaker) as session:
        stale = now - timedelta(seconds=settings.job_stall_seconds)
        stmt = (
            select(Job)
            .where(Job.status == JobStatus.PROCESSING, Job.heartbeat_at < stale)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        for job in (await session.execute(stmt)).scalars():
            stalled += 1
            message = f"The worker running attempt {job.attempts} stopped responding."
            lifecycle.fail_attempt(
                session, job, settings, now, {"code": "WORKER_LOST", "message": message}, retryable=True
            )
            if lifecycle.is_final(job):
                lifecycle.announce_after_commit(session, job)
        for job in await _undelivered(session, dispatcher, now):
            lost += 1
            job.dispatch_token = None  # its message was lost: hand it out again
    ready = (
        select(Job.organization_id)
        .distinct()
        .where(
            Job.status == JobStatus.QUEUED,
            Job.dispatch_token.is_(None),
            or_(Job.run_after.is_(None), Job.run_after <= utcnow()),
        )
    )
    async with dispatcher.sessionmaker() as session:
        organizations = list((await session.execute(ready.limit(1000))).scalars())
    dispatched = 0
    for organization_id in organizations:
        dispatched += len(await dispatcher.dispatch(organization_id))
    if stalled or lost or dispatched:
        logger.info("job sweep: %d stalled, %d undelivered, %d dispatched", stalled, lost, dispatched)
    return {"stalled": stalled, "lost": lost, "dispatched": dispatched}


async def _undelivered(session: AsyncSession, dispatcher: lifecycle.Dispatcher, now: datetime) -> list[Job]:
    """Handed-out jobs that will not start from their message: Redis lost it (looked for once the
    job has waited a third of RECOVERY_SECONDS), or a worker took it and died before starting the
    job (after JOB_DISPATCH_TIMEOUT_SECONDS). A message merely waiting in arq's queue keeps its place."""
    settings: Settings = dispatcher.settings
    grace = min(settings.recovery_seconds / 3, settings.job_dispatch_timeout_seconds)
    stmt = (
        select(Job)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.dispatch_token.is_not(None),
            Job.dispatched_at < now - timedelta(seconds=grace),
        )
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    jobs = list((await session.execute(stmt)).scalars())
    if not jobs:
        return []
    async with dispatcher.queue.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.exists(f"{job_key_prefix}{job.id}:{job.dispatch_token}")
            pipe.exists(f"{in_progress_key_prefix}{job.id}:{job.dispatch_token}")
        found = await pipe.execute()
    abandoned = now - timedelta(seconds=settings.job_dispatch_timeout_seconds)
    return [
        job
        for job, queued, taken in zip(jobs, found[::2], found[1::2], strict=True)
        if not queued or (taken and job.dispatched_at is not None and job.dispatched_at < abandoned)
    ]
