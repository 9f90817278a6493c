"""Enqueueing arq tasks from a request, only once the request's transaction has committed."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.db import after_commit

logger = logging.getLogger(__name__)


def enqueue_after_commit(session: AsyncSession, queue: ArqRedis, function: str, *args: Any, **kwargs: Any) -> None:
    async def _enqueue() -> None:
        try:
            await queue.enqueue_job(function, *args, **kwargs)
        except Exception:  # the change is committed; losing its side task must not turn it into a 5xx
            logger.exception("could not enqueue %s after commit", function)

    after_commit(session, _enqueue)


async def _queue(request: Request) -> ArqRedis:
    queue: ArqRedis = request.app.state.queue
    return queue


QueueDep = Annotated[ArqRedis, Depends(_queue)]


DEFAULT_QUEUE = "backplane:queue"


def create_queue(redis_url: str) -> ArqRedis:
    """An arq client that connects lazily, so the API starts (and later recovers) while Redis is down."""
    from redis.asyncio import ConnectionPool

    return ArqRedis(ConnectionPool.from_url(redis_url), default_queue_name=DEFAULT_QUEUE)
