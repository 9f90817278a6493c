"""`jobs.sweep`, an arq cron job on every worker (one run per tick across them all): recovers what
dead workers and lost messages left behind, and dispatches waiting jobs whose backoff has passed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from arq.constants import in_progress_key_prefix, job_key_prefix
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing.plans import PlanName
from backplane.core import metrics
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
            lifecycle.not_in_maintenance(),
        )
    )
    async with dispatcher.sessionmaker() as session:
        organizations = list((await session.execute(ready.limit(1000))).scalars())
    dispatched = 0
    for organization_id in organizations:
        dispatched += len(await dispatcher.dispatch(organization_id))
    if stalled or lost or dispatched:
        logger.info("job sweep: %d stalled, %d undelivered, %d dispatched", stalled, lost, dispatched)
    async with dispatcher.sessionmaker() as session:
        await sample_waiting(session)
    return {"stalled": stalled, "lost": lost, "dispatched": dispatched}


# Jobs waiting for a slot (queued, not handed out), summed by their organization's plan (its row in
# subscriptions; none: free), and the longest queue of one organization.
_WAITING = text("""
WITH waiting AS (
    SELECT organization_id, count(*) AS n FROM jobs
    WHERE status = 'queued' AND dispatch_token IS NULL GROUP BY organization_id
)
SELECT coalesce(subscriptions.plan, 'free') AS plan, sum(waiting.n) AS jobs, max(waiting.n) AS longest
FROM waiting LEFT JOIN subscriptions USING (organization_id)
GROUP BY 1
""")


async def sample_waiting(session: AsyncSession) -> None:
    rows = (await session.execute(_WAITING)).all()
    by_plan = {str(name): 0 for name in PlanName} | {row.plan: int(row.jobs) for row in rows}
    for plan, count in by_plan.items():
        metrics.JOBS_WAITING.labels(plan).set(count)
    metrics.JOBS_WAITING_LONGEST_QUEUE.set(max((int(row.longest) for row in rows), default=0))


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
