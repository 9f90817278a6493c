from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backplane.core.tenancy import LivemodeRepository
from backplane.jobs.models import Job, RenderedOutput


class JobRepository(LivemodeRepository[Job]):
    """Jobs of one organization, and of one mode: test-mode keys see only test-mode jobs."""

    model = Job
    id_prefix = "job"


def holding_slot(alias: str) -> str:
    """SQL: the job `alias` holds a slot of its organization (running, or handed out and not started
    yet): the predicate of the partial index ix_jobs_active (models.py)."""
    return f"({alias}.status = 'processing' OR ({alias}.status = 'queued' AND {alias}.dispatch_token IS NOT NULL))"


def next_waiting(organization: str, limit: str) -> str:
    """SQL: the ids of an organization's next waiting jobs (at most `limit`), best priority first, then
    oldest (the order of the partial index ix_jobs_waiting, read off it without sorting), that no other
    transaction is handing out, locked; `:now` decides which retries are due. The completion's hand-over
    and the dispatcher's pick the same way."""
    return f"""SELECT waiting.id FROM jobs AS waiting
    WHERE waiting.organization_id = {organization}
        AND waiting.status = 'queued' AND waiting.dispatch_token IS NULL
        AND (waiting.run_after IS NULL OR waiting.run_after <= :now)
        AND NOT EXISTS (SELECT 1 FROM agent_maintenance AS m WHERE m.agent_id = waiting.agent_id)
    ORDER BY waiting.priority DESC, waiting.created_at, waiting.id
    LIMIT {limit}
    FOR UPDATE OF waiting SKIP LOCKED"""


# A run's two writes, each one statement that is atomic by itself, fenced by the run's dispatch token.

_COLUMNS = (
    "id, organization_id, livemode, agent_id, status, priority, input_data, config, file_ids, output_data, error, "
    "attempts, max_attempts, created_by, created_at, queued_at, started_at, finished_at, run_after, dispatch_token, "
    "dispatched_at, heartbeat_at, trace_context, webhook, webhook_events_filter"
)
_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))

_CLAIM = text(f"""
WITH claimed AS (
    UPDATE jobs SET status = 'processing', attempts = attempts + 1, started_at = :now, heartbeat_at = :now
    WHERE id = :job_id AND dispatch_token = :token AND status = 'queued'
    RETURNING {_COLUMNS}
), noted AS (
    INSERT INTO job_transitions (job_id, from_status, to_status, attempt, reason, at)
    SELECT id, 'queued', 'processing', attempts, 'attempt ' || attempts, :now FROM claimed
)
SELECT * FROM claimed
""")


async def claim(connection: AsyncConnection, job_id: str, token: uuid.UUID, now: datetime) -> Job | None:
    """QUEUED with this token -> PROCESSING, one attempt counted, the transition recorded: the job as
    it is now (detached), or None when the token no longer names its run."""
    row = (await connection.execute(_CLAIM, {"job_id": job_id, "token": token, "now": now})).mappings().first()
    return None if row is None else Job(**{name: row[name] for name in _NAMES})


_ONE_IF_FREE = "CASE WHEN (SELECT active FROM others) < :slots THEN 1 ELSE 0 END"  # one job, if a slot is free

# The finished job frees its slot and, in the same statement, hands it to the organization's next
# waiting job (best priority, then oldest) unless the organization's other runs fill its plan already:
# with `run_next`, that job is claimed for this run's worker at once (PROCESSING, one attempt counted).
# Freeing one slot and taking at most one keeps every concurrent count of active jobs an upper bound,
# so the dispatcher's advisory lock is not needed here (see lifecycle.Dispatcher.dispatch).
_COMPLETE = text(f"""
WITH done AS (
    UPDATE jobs SET status = 'completed', output_data = :output, error = NULL, heartbeat_at = NULL,
        finished_at = :now, dispatch_token = NULL, run_after = NULL
    WHERE id = :job_id AND dispatch_token = :token AND status = 'processing'
    RETURNING id, organization_id, livemode, attempts, webhook, webhook_events_filter
), noted AS (
    INSERT INTO job_transitions (job_id, from_status, to_status, attempt, at)
    SELECT id, 'processing', 'completed', attempts, :now FROM done
), announced AS (
    INSERT INTO events (id, organization_id, type, data, livemode, created_at, trace_context)
    SELECT :event_id, organization_id, 'job.completed', :event_data, livemode, :now, :event_trace FROM done
), hooked AS (
    INSERT INTO webhook_deliveries (id, organization_id, job_id, url, payload, event_type, livemode, kind, status,
        attempt_count, max_attempts, next_attempt_at, created_at, trace_context)
    SELECT :hook_id, organization_id, id, webhook, :event_data, 'job.completed', livemode, 'job', 'pending',
        0, :hook_attempts, :now, :now, :event_trace FROM done
    WHERE webhook IS NOT NULL AND (webhook_events_filter IS NULL OR 'completed' = ANY(webhook_events_filter))
    RETURNING id, url
), others AS (
    SELECT count(*) AS active FROM jobs AS active JOIN done ON active.organization_id = done.organization_id
    WHERE active.id <> done.id AND {holding_slot("active")}
), next AS (
    {next_waiting("(SELECT organization_id FROM done)", _ONE_IF_FREE)}
), handed AS (
    UPDATE jobs SET dispatch_token = :next_token, dispatched_at = :now,
        status = CASE WHEN :run_next THEN 'processing' ELSE status END,
        attempts = attempts + CASE WHEN :run_next THEN 1 ELSE 0 END,
        started_at = CASE WHEN :run_next THEN :now ELSE started_at END,
        heartbeat_at = CASE WHEN :run_next THEN :now ELSE heartbeat_at END
    FROM next WHERE jobs.id = next.id
    RETURNING {", ".join(f"jobs.{name}" for name in _NAMES)}
), started AS (
    INSERT INTO job_transitions (job_id, from_status, to_status, attempt, reason, at)
    SELECT id, 'queued', 'processing', attempts, 'attempt ' || attempts, :now FROM handed WHERE :run_next
)
SELECT (SELECT count(*) FROM done) AS completed, (SELECT id FROM hooked) AS hook_id,
    (SELECT url FROM hooked) AS hook_url, handed.*
FROM (SELECT 1) AS one LEFT JOIN handed ON true
""").bindparams(
    bindparam("output", type_=JSONB), bindparam("event_data", type_=JSONB), bindparam("event_trace", type_=JSONB)
)


async def complete(
    connection: AsyncConnection,
    job_id: str,
    token: uuid.UUID,
    now: datetime,
    output: dict[str, Any],
    *,
    event_id: str,
    event_data: dict[str, Any],
    event_trace: dict[str, str] | None = None,
    slots: int,
    next_token: uuid.UUID,
    run_next: bool,
    hook_id: str = "",
    hook_attempts: int = 1,
) -> tuple[bool, Job | None, tuple[str, str] | None]:
    """PROCESSING with this token -> COMPLETED with its `job.completed` event; the freed slot handed on
    with `next_token` (and that job claimed, with `run_next`); `event_trace`: the event's trace context
    (core/tracing.py); `hook_id`: the id of its `completed` notification to its own webhook, made if it
    asked for one (jobs/hooks.py). (whether this run completed the job, the job handed the slot, detached,
    and the notification's (id, url) if one was made)."""
    row = (
        (
            await connection.execute(
                _COMPLETE,
                {
                    "job_id": job_id,
                    "token": token,
                    "now": now,
                    "output": output,
                    "event_id": event_id,
                    "event_data": event_data,
                    "event_trace": event_trace,
                    "slots": slots,
                    "next_token": next_token,
                    "run_next": run_next,
                    "hook_id": hook_id,
                    "hook_attempts": hook_attempts,
                },
            )
        )
        .mappings()
        .one()
    )
    handed = None if row["id"] is None else Job(**{name: row[name] for name in _NAMES})
    hook = None if row["hook_id"] is None else (row["hook_id"], row["hook_url"])
    return bool(row["completed"]), handed, hook


async def get_rendered(session: AsyncSession, job_id: str, format_name: str) -> RenderedOutput | None:
    return await session.get(RenderedOutput, (job_id, format_name))


async def add_rendered(
    session: AsyncSession, job_id: str, format_name: str, content: bytes, content_type: str, now: datetime
) -> RenderedOutput:
    """Store a rendering; when a concurrent download stored one first, that one is kept and returned."""
    stmt = (
        insert(RenderedOutput)
        .values(job_id=job_id, format=format_name, content=content, content_type=content_type, created_at=now)
        .on_conflict_do_nothing(index_elements=["job_id", "format"])
    )
    await session.execute(stmt)
    stored = await session.get(RenderedOutput, (job_id, format_name), populate_existing=True)
    assert stored is not None
    return stored
