"""A job's own webhook (`webhook` and `webhook_events_filter` on `POST /v1/jobs`): its start, progress
and final state are POSTed to the URL the job named.

Each notification is a webhook delivery of kind `job` (webhooks/delivery.py): signed with both schemes
as organization webhooks are, with the organization's job-webhook secret (one per organization and
mode, `GET /v1/webhooks/default/secret`, as Replicate signs its per-prediction webhooks with one
account secret), sent through the same SSRF-guarded client, retried on the same schedule, every
attempt logged (`GET /v1/jobs/{id}/webhook-deliveries`).

- `start` (`job.started`): when the job's first attempt starts running;
- `progress` (`job.progress`): when its agent reports progress, at most one per
  JOB_WEBHOOK_PROGRESS_INTERVAL_MS per job (a Redis key across workers; reports in between are
  dropped from the webhook, not from the job's event stream);
- `completed` (`job.completed`, `job.failed` or `job.cancelled`): its final state, recorded in the
  same transaction as the state itself.

Body: `{event, type, timestamp, webhook_id: null, data}` with the job as the API shows it in `data`
(plus `output_url` once completed, and `progress: {progress, message}` for a progress notification).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.jobs.models import Job, JobStatus
from backplane.webhooks import delivery as flow
from backplane.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

NOTIFICATIONS = ("start", "progress", "completed")
FINAL_EVENTS = {
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.DEAD_LETTER: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


def wants(job: Job, notification: str) -> bool:
    return bool(job.webhook) and (job.webhook_events_filter is None or notification in job.webhook_events_filter)


def new_job_delivery(
    job: Job, settings: Settings, event_type: str, data: dict[str, Any], now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        id=flow.new_delivery_id(),
        organization_id=job.organization_id,
        endpoint_id=None,
        event_id=None,
        event_type=event_type,
        livemode=job.livemode,
        kind="job",
        status="pending",
        attempt_count=0,
        max_attempts=flow.max_attempts(settings),
        next_attempt_at=now,
        created_at=now,
        job_id=job.id,
        url=job.webhook,
        payload=data,
        trace_context=job.trace_context,
    )


def notify(session: AsyncSession, job: Job, settings: Settings, notification: str, **extra: Any) -> None:
    """Add the notification's delivery to the session's transaction, queued once it commits, if the job
    asked for it."""
    from backplane.jobs.lifecycle import event_data  # lifecycle calls this module

    if not wants(job, notification):
        return
    now = utcnow()
    if notification == "start":
        event_type = "job.started"
    elif notification == "progress":
        event_type = "job.progress"
    else:
        event_type = FINAL_EVENTS[JobStatus(job.status)]
    delivery = new_job_delivery(job, settings, event_type, {**event_data(job, settings), **extra}, now)
    session.add(delivery)
    flow.schedule(session, delivery)


async def notify_now(
    sessionmaker: async_sessionmaker[AsyncSession], job: Job, settings: Settings, notification: str, **extra: Any
) -> None:
    """`notify` in a transaction of its own (a run's start and progress, outside any other)."""
    if not wants(job, notification):
        return
    try:
        async with unit_of_work(sessionmaker) as session:
            notify(session, job, settings, notification, **extra)
    except Exception:  # a notification is not worth failing the job for
        logger.warning("could not record the %s notification of job %s", notification, job.id, exc_info=True)


async def progress_due(redis: Redis, job_id: str, settings: Settings) -> bool:
    """Whether a progress notification may go now (at most one per interval per job, across workers)."""
    interval = settings.job_webhook_progress_interval_ms
    if interval <= 0:
        return True
    try:
        return bool(await redis.set(keys.job_webhook_progress(job_id), "1", nx=True, px=interval))
    except Exception:  # Redis away: no progress notification rather than a flood
        return False
