from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.db import Base, TimestampMixin


class JobStatus(StrEnum):
    PENDING = "pending"  # validated and counted against the quota; becomes QUEUED when committed
    QUEUED = "queued"  # waiting for a slot (the plan's concurrent-job limit) or for a worker
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"  # failed for good (bad input), or on the way to DEAD_LETTER after its last attempt
    DEAD_LETTER = "dead_letter"  # every attempt failed; `POST /v1/jobs/{id}/retry` runs it again
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.DEAD_LETTER, JobStatus.CANCELLED})


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_organization_id_created_at", "organization_id", "created_at"),
        # What the dispatcher and a finishing run read: an organization's waiting jobs, best first, in
        # exactly the order they are taken (`id` last), so the first is read off the index, not sorted.
        Index(
            "ix_jobs_waiting",
            "organization_id",
            text("priority DESC"),
            "created_at",
            "id",
            postgresql_where=text("status = 'queued' AND dispatch_token IS NULL"),
        ),
        # Slots in use and stalled runs.
        Index(
            "ix_jobs_active",
            "organization_id",
            postgresql_where=text("status = 'processing' OR (status = 'queued' AND dispatch_token IS NOT NULL)"),
        ),
        CheckConstraint(
            "status IN ('pending', 'queued', 'processing', 'completed', 'failed', 'dead_letter', 'cancelled')",
            name="status",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # job_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(default=True)
    agent_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    input_data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    file_ids: Mapped[list[str]] = mapped_column(JSONB)
    output_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger, default=3)
    created_by: Mapped[str | None] = mapped_column(String(64))  # "user:<uuid>" or "key:<prefix>"
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Scheduling. A queued job may run once `run_after` has passed; `dispatch_token` is set when it
    # is handed to an arq worker and fences every later write of that run (a stale run's writes
    # match no row). `heartbeat_at` is refreshed while it runs; a stale heartbeat means a dead worker.
    run_after: Mapped[datetime | None]
    dispatch_token: Mapped[uuid.UUID | None]
    dispatched_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    # Why a queued job is not handed out (its agent under maintenance); None otherwise.
    status_reason: Mapped[str | None] = mapped_column(String(600))
    # The trace-context carrier of the request that created it (core/tracing.py; NULL without tracing).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # The job's own webhook: its start, progress and final state are POSTed there (webhooks/job_hooks.py),
    # the notifications named in `webhook_events_filter` (`start`, `progress`, `completed`).
    webhook: Mapped[str | None] = mapped_column(String(2048))
    webhook_events_filter: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))


class AgentMaintenance(Base):
    """An agent under maintenance (the row exists while it is): its new jobs are accepted and wait
    queued, none is handed out, until staff end it (`jobs/maintenance.py`)."""

    __tablename__ = "agent_maintenance"

    agent_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    since: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(320))  # the staff user's email, or `cli:<os user>`


class JobTransition(Base):
    """Every status change of a job, with its time: the job's history."""

    __tablename__ = "job_transitions"
    __table_args__ = (Index("ix_job_transitions_job_id_at", "job_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime]


class RenderedOutput(Base):
    """A completed job's output rendered in one format (`GET /v1/jobs/{id}/output?format=`), made on the
    first download and served from here afterwards: a completed job's output never changes."""

    __tablename__ = "job_outputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
