"""Job state changes, each one atomic in PostgreSQL, and handing jobs to workers within plan limits.

The jobs table is the source of truth; arq only carries "run job X with token T" messages. A job
is handed to a worker (`Dispatcher.dispatch`, or by the run that frees its slot) only while its
organization has a free slot (the plan's concurrent-job limit), best priority first, then oldest.
The dispatch token fences the run: every later write of that run names the token, so a run that
lost its job (cancelled, or declared dead after its worker stopped heartbeating and handed to
another worker) changes nothing.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, exists, inspect, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from backplane.billing.plans import Plan
from backplane.billing.service import plan_of
from backplane.core import keys, metrics, tracing
from backplane.core.config import Settings
from backplane.core.db import insert_rows, unit_of_work, utcnow
from backplane.core.effects import effects
from backplane.core.queue import Message, Publish, send
from backplane.events.service import record_event
from backplane.jobs import hooks
from backplane.jobs.models import FINAL_STATUSES, AgentMaintenance, Job, JobStatus, JobTransition
from backplane.jobs.repository import holding_slot, next_waiting

logger = logging.getLogger(__name__)

JOBS_QUEUE = "backplane:jobs"  # agent jobs; short tasks (emails, deliveries) use DEFAULT_QUEUE
RUN_FUNCTION = "jobs.run"
# A job handed out: its id, its run's dispatch token, and the trace context its run continues.
Handed = tuple[str, uuid.UUID, tracing.Carrier | None]
CANCEL_CHANNEL = keys.JOBS_CANCEL_CHANNEL
WAKE_CHANNEL = keys.JOBS_WAKE_CHANNEL
final_channel = keys.job_final_channel
_JOB_MAPPER = inspect(Job)


def not_in_maintenance() -> ColumnElement[bool]:
    """A job's agent is not under maintenance (such jobs wait: `jobs/maintenance.py`)."""
    return ~exists().where(AgentMaintenance.agent_id == Job.agent_id)


def is_final(job: Job) -> bool:
    return job.status in FINAL_STATUSES


def transition(session: AsyncSession, job: Job, to: JobStatus, now: datetime, reason: str | None = None) -> None:
    """Move `job` to `to` and record the change with its time (the caller's transaction makes both atomic)."""
    session.add(JobTransition(**_transition_row(job, job.status, to, now, reason)))
    _moved(session, job, to, now)


async def queue_new(session: AsyncSession, jobs: Sequence[Job], now: datetime, reason: str) -> None:
    """New jobs (added to the session as pending, not yet flushed) queued: written as queued, and
    both their first transitions (none to pending, then pending to queued: what `transition` records)
    in one INSERT after the jobs' own. A batch of 100 jobs made 200 ORM objects for those rows, and
    flushing them was most of the API's CPU for the batch."""
    rows: list[dict[str, Any]] = []
    for job in jobs:
        rows.append(_transition_row(job, None, JobStatus.PENDING, now, None))
        rows.append(_transition_row(job, JobStatus.PENDING, JobStatus.QUEUED, now, reason))
        _moved(session, job, JobStatus.QUEUED, now)
    await session.flush()  # the jobs first: their transitions name them
    await insert_rows(session, JobTransition.__table__, rows)  # type: ignore[arg-type]  # in order: the history sorts ties by id


def _transition_row(
    job: Job, from_status: str | None, to: JobStatus, now: datetime, reason: str | None
) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "from_status": None if from_status is None else str(from_status),
        "to_status": str(to),
        "attempt": job.attempts,
        "reason": reason[:500] if reason else None,
        "at": now,
    }


def _moved(session: AsyncSession, job: Job, to: JobStatus, now: datetime) -> None:
    """`job` in status `to`, with the stamps that status sets; its event streams told (jobs/live.py)."""
    job.status = str(to)
    effects(session).publish(keys.job_changed_channel(job.id), job.status)
    if to is JobStatus.QUEUED:
        job.queued_at = now
    if to in FINAL_STATUSES:
        job.finished_at = now
        job.dispatch_token = None
        job.run_after = None


def job_data(job: Job) -> dict[str, Any]:
    """A job as the API shows it (and as its events carry it)."""
    return {
        "id": job.id,
        "agent_id": job.agent_id,
        "status": job.status,
        "priority": job.priority,
        "input_data": job.input_data,
        "config": job.config,
        "file_ids": job.file_ids,
        "output_data": job.output_data,
        "error": job.error,
        "attempts": job.attempts,
        "livemode": job.livemode,
        "created_at": job.created_at,
        "queued_at": job.queued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "webhook": job.webhook,
        "webhook_events_filter": job.webhook_events_filter,
    }


def event_data(job: Job, settings: Settings) -> dict[str, Any]:
    data = job_data(job)
    for stamp in ("created_at", "queued_at", "started_at", "finished_at"):
        if data[stamp] is not None:
            data[stamp] = data[stamp].isoformat().replace("+00:00", "Z")
    if job.status == JobStatus.COMPLETED:
        data["output_url"] = f"{settings.public_base_url.rstrip('/')}/v1/jobs/{job.id}/output"
    return data


def record_final_event(session: AsyncSession, job: Job, settings: Settings) -> None:
    kind = "job.completed" if job.status == JobStatus.COMPLETED else "job.failed"
    record_event(session, job.organization_id, kind, event_data(job, settings), livemode=job.livemode)


def announce_after_commit(session: AsyncSession, job: Job) -> None:
    """Once committed, tell `?wait=` listeners the job's final state (they re-read it when their wait
    ends, so a lost announcement loses nothing)."""
    effects(session).publish(final_channel(job.id), job.status)


async def announce(redis: Redis, job_id: str, status_: str) -> None:
    """Tell `?wait=` listeners that the job's final state has committed."""
    try:
        await redis.publish(final_channel(job_id), status_)
    except Exception:  # waiters re-read the job when their wait ends; nothing is lost
        logger.warning("could not announce job %s as %s", job_id, status_, exc_info=True)


def retry_delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff after failed attempt `attempt` (1-based): base, 4x base, 16x base, with 10% jitter."""
    delay = settings.job_retry_base_seconds * (4 ** (attempt - 1))
    return delay * (1 + random.uniform(0, 0.1))


def fail_attempt(
    session: AsyncSession,
    job: Job,
    settings: Settings,
    now: datetime,
    error: dict[str, Any],
    *,
    retryable: bool,
) -> None:
    """The current run failed: queue the job again after a backoff, or fail it for good."""
    job.error = {**error, "attempt": job.attempts}
    job.dispatch_token = None
    job.heartbeat_at = None
    if retryable and job.attempts < job.max_attempts:
        job.run_after = now + timedelta(seconds=retry_delay(settings, job.attempts))
        transition(session, job, JobStatus.QUEUED, now, reason=f"attempt {job.attempts} failed: {error['message']}")
        return
    transition(session, job, JobStatus.FAILED, now, reason=error["message"])
    if retryable:  # every attempt failed: park it where `retry` can find it
        transition(session, job, JobStatus.DEAD_LETTER, now, reason=f"{job.attempts} attempts failed")
        metrics.JOB_DEAD_LETTERS.labels(job.agent_id).inc()
    record_final_event(session, job, settings)
    hooks.notify(session, job, settings, "completed")


# Handing out, once the organization's dispatch lock is held: one statement counts the jobs holding a
# slot, picks as many waiting jobs as are free (best priority first, then oldest, skipping those
# another transaction is handing out) and gives each its dispatch token. Each job holding a slot is
# locked (FOR SHARE) while counted: a run being finished by a statement not yet committed is waited
# for, and PostgreSQL checks its row again once it is, so a slot freed meanwhile counts as free.
# Without it a job queued while a run was finishing was left to the sweeper: the finishing statement
# began before the job committed (so could not hand it the slot) and the count ran before that
# statement committed. Those locks last until the transaction ends, and a finishing run waits on them:
# counting, picking and marking in one round trip (three before, the marking flushed at the commit)
# holds them for as short a time as the transaction allows.
_HAND_OUT = text(f"""
WITH holding AS (
    SELECT id FROM jobs AS active WHERE organization_id = :organization_id AND {holding_slot("active")} FOR SHARE
), next AS (
    {next_waiting(":organization_id", "greatest(:slots - (SELECT count(*) FROM holding), 0)")}
)
UPDATE jobs SET dispatch_token = gen_random_uuid(), dispatched_at = :now FROM next WHERE jobs.id = next.id
RETURNING jobs.id, jobs.dispatch_token, jobs.attempts, jobs.trace_context
""")


def dispatched(job: Job) -> tracing.Carrier | None:
    """A `jobs.dispatch` span for a job handed out, in the trace of the request that created it (or a
    trace of its own): the context its run continues. None without tracing."""
    return _dispatch_mark(job.id, job.attempts, job.trace_context)


def _dispatch_mark(job_id: str, attempts: int, trace_context: tracing.Carrier | None) -> tracing.Carrier | None:
    return tracing.mark("jobs.dispatch", parent=trace_context, job_id=job_id, attempt=attempts + 1)


def _message(job_id: str, token: uuid.UUID, trace: tracing.Carrier | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of a `jobs.run` message; the trace context rides along as a keyword argument, only
    when there is one (so that without tracing the message is what it always was)."""
    kwargs: dict[str, Any] = {"_job_id": f"{job_id}:{token}", "_queue_name": JOBS_QUEUE}
    if trace:
        kwargs["trace_context"] = trace
    return (job_id, str(token)), kwargs


class Dispatcher:
    """Hands an organization's waiting jobs to workers, as many as it has free slots: one per process.

    A job handed out gets a dispatch token and an arq message naming it; the workers' polls are then
    woken (`WAKE_CHANNEL`) instead of finding it on their next poll.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        queue: ArqRedis,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.queue = queue
        self.settings = settings

    async def plan_of(self, session: AsyncSession, organization_id: uuid.UUID) -> Plan:
        return await plan_of(session, self.redis, self.settings, organization_id)

    async def dispatch(self, organization_id: uuid.UUID, plan: Plan | None = None) -> list[str]:
        """Hand out the organization's next waiting jobs, best priority first, then oldest, in a
        transaction of their own. `plan`: the organization's plan when the caller has it already (a
        request); else it is looked up."""
        async with unit_of_work(self.sessionmaker) as session:
            return await self.hand_out(session, organization_id, plan)

    async def hand_out(self, session: AsyncSession, organization_id: uuid.UUID, plan: Plan | None = None) -> list[str]:
        """`dispatch` inside the caller's transaction: the jobs are handed out, and their messages sent,
        only if it commits. Job creation hands its new jobs out this way, in the transaction that
        writes them (one commit per created job, not two). Only a transaction that holds no lock on
        an existing job may: the count below waits on the organization's running jobs while the lock
        is held, so one holding a job's row (a cancel, a run ending) would deadlock with a dispatcher
        waiting on that row; those dispatch after their commit (`dispatch_after_commit`)."""
        # One dispatcher per organization at a time, so two never both see the same free slot. A
        # finishing run hands its own slot on without this lock (`repository.complete`): it
        # frees one and takes at most one in the same statement, which no count here can miss.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"jobs:{organization_id}"}
        )
        plan = plan or await self.plan_of(session, organization_id)
        now = utcnow()
        rows = await session.execute(
            _HAND_OUT, {"organization_id": organization_id, "now": now, "slots": plan.concurrent_jobs}
        )
        handed: list[Handed] = []
        identity_map = session.sync_session.identity_map
        for job_id, token, attempts, trace_context in rows:
            handed.append((job_id, token, _dispatch_mark(job_id, attempts, trace_context)))
            loaded = identity_map.get(_JOB_MAPPER.identity_key_from_primary_key((job_id,)))
            if loaded is not None:  # a job this session holds (one it has just created): as written
                set_committed_value(loaded, "dispatch_token", token)
                set_committed_value(loaded, "dispatched_at", now)
        self.send_after_commit(session, handed)
        return [job_id for job_id, _, _ in handed]

    def send_after_commit(self, session: AsyncSession, handed: list[Handed]) -> None:
        """Once committed, each handed job's arq message, then one wake-up for the workers' polls.

        A message that never arrives: the sweeper hands the job out again."""
        for job_id, token, trace in handed:
            args, kwargs = _message(job_id, token, trace)
            effects(session).enqueue(RUN_FUNCTION, *args, **kwargs)
        if handed:
            effects(session).publish(WAKE_CHANNEL, "1")

    async def send(self, handed: list[Handed]) -> None:
        """`send_after_commit` for jobs whose handing out has committed already: their messages and the
        wake-up in one round trip (`queue.send`)."""
        if not handed:
            return
        messages = [Message.of(RUN_FUNCTION, *args, **kwargs) for args, kwargs in (_message(*h) for h in handed)]
        try:
            await send(self.queue, [*messages, Publish(WAKE_CHANNEL, "1")])
        except Exception:  # committed already; the sweeper hands them out again
            logger.exception("could not enqueue jobs %s", ", ".join(job_id for job_id, _, _ in handed))

    def dispatch_after_commit(
        self, session: AsyncSession, organization_id: uuid.UUID, plan: Plan | None = None
    ) -> None:
        async def _dispatch() -> None:  # if it fails, the sweeper dispatches waiting jobs on its next pass
            await self.dispatch(organization_id, plan)

        effects(session).call(_dispatch, f"dispatching the jobs of organization {organization_id}")
