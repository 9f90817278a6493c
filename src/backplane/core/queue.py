"""The arq client of the API (what requests enqueue with, through their unit of work's effects), and
how this service queues arq jobs: `send`, one round trip for any number of jobs and publishes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_ms, to_unix_ms
from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


async def _queue(request: Request) -> ArqRedis:
    queue: ArqRedis = request.app.state.queue
    return queue


QueueDep = Annotated[ArqRedis, Depends(_queue)]


DEFAULT_QUEUE = "backplane:queue"


def create_queue(redis_url: str) -> ArqRedis:
    """An arq client that connects lazily, so the API starts (and later recovers) while Redis is down."""
    from redis.asyncio import ConnectionPool

    return ArqRedis(ConnectionPool.from_url(redis_url), default_queue_name=DEFAULT_QUEUE)


# arq's enqueue (`ArqRedis.enqueue_job`) as one script: arq makes three round trips of it (WATCH the
# job's key, EXISTS of it and of its result, then MULTI: the job, its place in the queue, EXEC). Each
# round trip costs this service's hot paths more CPU than the work it carries (a job's dispatch, a
# webhook delivery's hand-over), and the script lets a unit of work send its messages and publishes in
# one. Same keys, same serialized job, same rule: a job whose id is queued or has a result is not
# queued again. Hand-written: arq has no pipelined enqueue.
# KEYS: job key, result key, queue; ARGV: serialized job, expires ms, score, job id -> 1 queued, 0 not
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class Message:
    """An arq job to queue: `enqueue_job`'s arguments, its options (`_job_id`, `_queue_name`,
    `_defer_until`, `_defer_by`, `_expires`, `_job_try`) meaning what they mean to arq; every other
    keyword is the task's own."""

    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, task: str, *args: Any, **kwargs: Any) -> Message:
        return cls(task, args, kwargs)

    def queue_in(self, pipe: Pipeline, queue: ArqRedis) -> None:
        """Add this message to `pipe` (a pipeline of `queue`'s server): its reply is 1 if it was queued."""
        kwargs = dict(self.kwargs)
        job_id: str = kwargs.pop("_job_id", None) or uuid.uuid4().hex
        queue_name: str = kwargs.pop("_queue_name", None) or queue.default_queue_name
        defer_until: datetime | None = kwargs.pop("_defer_until", None)
        defer_by_ms = to_ms(kwargs.pop("_defer_by", None))
        expires_ms = to_ms(kwargs.pop("_expires", None))
        job_try: int | None = kwargs.pop("_job_try", None)
        if defer_until and defer_by_ms:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        enqueued_ms = timestamp_ms()
        score = to_unix_ms(defer_until) if defer_until is not None else enqueued_ms + (defer_by_ms or 0)
        expires_ms = expires_ms or score - enqueued_ms + queue.expires_extra_ms
        job = serialize_job(self.task, self.args, kwargs, job_try, enqueued_ms, serializer=queue.job_serializer)
        keys = (job_key_prefix + job_id, result_key_prefix + job_id, queue_name)
        arguments: tuple[Any, ...] = (job, expires_ms, score, job_id)
        pipe.eval(_ENQUEUE, 3, *keys, *arguments)  # the text each time (Redis keeps it compiled): no NOSCRIPT


@dataclass(frozen=True, slots=True)
class Publish:
    channel: str
    message: str


async def send(client: Redis, items: Sequence[Message | Publish]) -> list[bool]:
    """Queue each message and publish each publish, in the order given and in one round trip; whether
    each message was queued, in order. Messages need the arq client (its serializer, default queue
    and expiry); publishes alone any client of the server (a publish is heard server-wide)."""
    async with client.pipeline(transaction=False) as pipe:
        for item in items:
            if isinstance(item, Message):
                if not isinstance(client, ArqRedis):
                    raise TypeError("queuing an arq job needs the arq client (ArqRedis)")
                item.queue_in(pipe, client)
            else:
                pipe.publish(item.channel, item.message)
        replies = await pipe.execute()
    return [bool(reply) for item, reply in zip(items, replies, strict=True) if isinstance(item, Message)]


async def enqueue(queue: ArqRedis, task: str, *args: Any, **kwargs: Any) -> bool:
    """`queue.enqueue_job(task, ...)` in one round trip: whether it was queued (False: a job with its
    `_job_id` is queued already, or has a result)."""
    [queued] = await send(queue, [Message.of(task, *args, **kwargs)])
    return queued
