"""A job watched live: its status changes and its agent's progress, as Server-Sent Events.

Everything the stream sends is read from where it is kept, not from any process's memory, so any API
process can serve any job's stream and a client that reconnects loses nothing:

- status changes from PostgreSQL (`job_transitions`, ids in commit order);
- progress from a Redis stream per job (`bp:jobs:progress:<id>`, the last PROGRESS_KEPT reports, kept
  PROGRESS_TTL_SECONDS), written by the worker running the agent (`report_progress`).

Writers publish on `bp:jobs:changed:<id>` (and the final-state channel `?wait=` uses) after they
commit, which wakes the streams at once; a stream that misses a wake-up (Redis away) still looks
again every POLL_SECONDS. Each event's `id` is a cursor over both (`<transition id>:<stream id>`), which
a client sends back as `Last-Event-ID` to resume after the last event it saw.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from fastapi.sse import ServerSentEvent
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core import keys
from backplane.core.errors import InvalidInput, NotFound
from backplane.jobs import service
from backplane.jobs.models import FINAL_STATUSES, Job, JobTransition

logger = logging.getLogger(__name__)

PROGRESS_KEPT = 500
PROGRESS_TTL_SECONDS = 7 * 24 * 3600
POLL_SECONDS = 5.0
STREAM_SECONDS = 15 * 60  # then the stream ends; the client reconnects with Last-Event-ID
_CURSOR = re.compile(r"^(\d{1,18}):(0|\d{1,20}-\d{1,20})$")
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass
class Cursor:
    transition: int = 0
    progress: str = "0"

    def encode(self) -> str:
        return f"{self.transition}:{self.progress}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor:
        if value is None or value == "":
            return cls()
        match = _CURSOR.match(value.strip())
        if match is None:
            raise InvalidInput(
                {
                    "Last-Event-ID": [
                        "Not an event id of this stream: send back the `id` of the last event you received."
                    ]
                }
            )
        return cls(int(match[1]), match[2])


async def report_progress(redis: Redis, job_id: str, fraction: float, message: str) -> None:
    """An agent's progress report: kept in the job's stream, and the job's watchers woken."""
    key = keys.job_progress(job_id)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"progress": f"{fraction:.4f}", "message": message}, maxlen=PROGRESS_KEPT, approximate=True)
            pipe.expire(key, PROGRESS_TTL_SECONDS)
            pipe.publish(keys.job_changed_channel(job_id), "progress")
            await pipe.execute()
    except Exception:  # progress is a courtesy: the job runs on without it
        logger.warning("could not record the progress of job %s", job_id, exc_info=True)


def _time(stream_id: str) -> str:
    millis = int(stream_id.split("-", 1)[0])
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat().replace("+00:00", "Z")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def events(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job: Job,
    cursor: Cursor,
    render: Callable[[Job], BaseModel],
    *,
    stream_seconds: float = STREAM_SECONDS,
) -> AsyncIterator[ServerSentEvent]:
    """The job's events after `cursor`, then new ones as they happen, ending with `done` (the job in
    its final state) once it has one, or after `stream_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + stream_seconds
    organization_id, livemode, job_id = job.organization_id, job.livemode, job.id
    async with redis.pubsub() as pubsub:
        listening = await _subscribe(pubsub, job_id)
        while True:
            async with sessionmaker() as session:
                try:
                    current = await service.find_job(session, organization_id, livemode, job_id)
                except NotFound:  # deleted with its organization
                    return
                # Read after the job: every change up to the status just read has committed.
                rows = (
                    await session.execute(
                        select(JobTransition)
                        .where(JobTransition.job_id == job_id, JobTransition.id > cursor.transition)
                        .order_by(JobTransition.id)
                    )
                ).scalars()
                for row in rows:
                    cursor.transition = row.id
                    yield ServerSentEvent(event="status", id=cursor.encode(), data=_transition(row))
            for stream_id, fields in await _progress_after(redis, job_id, cursor.progress):
                cursor.progress = stream_id
                data = {"progress": float(fields["progress"]), "message": fields["message"], "at": _time(stream_id)}
                yield ServerSentEvent(event="progress", id=cursor.encode(), data=data)
            if current.status in FINAL_STATUSES:
                yield ServerSentEvent(event="done", id=cursor.encode(), data=render(current).model_dump(mode="json"))
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            listening = await _wait(pubsub, listening, job_id, min(POLL_SECONDS, left))


def _transition(row: JobTransition) -> dict[str, Any]:
    return {
        "from_status": row.from_status,
        "to_status": row.to_status,
        "attempt": row.attempt,
        "reason": row.reason,
        "at": _iso(row.at),
    }


async def _progress_after(redis: Redis, job_id: str, after: str) -> list[tuple[str, dict[str, str]]]:
    try:
        entries = await redis.xrange(keys.job_progress(job_id), min="-" if after == "0" else f"({after}", count=1000)
    except _REDIS_DOWN:
        return []  # Redis away: progress resumes from the same cursor once it is back
    return [(_text(stream_id), {_text(k): _text(v) for k, v in fields.items()}) for stream_id, fields in entries]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _subscribe(pubsub: Any, job_id: str) -> bool:
    try:
        await pubsub.subscribe(keys.job_changed_channel(job_id), keys.job_final_channel(job_id))
    except _REDIS_DOWN:
        return False
    return True


async def _wait(pubsub: Any, listening: bool, job_id: str, seconds: float) -> bool:
    """Until a change is announced or `seconds` pass; whether the subscription still listens."""
    if not listening:
        await asyncio.sleep(seconds)
        return await _subscribe(pubsub, job_id)
    try:
        await pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0) is not None:
            pass  # several changes at once: one look covers them all
    except _REDIS_DOWN:
        return False
    return True
