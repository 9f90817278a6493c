"""The arq client of the API (what requests enqueue with, through their unit of work's effects)."""

from __future__ import annotations

from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request


def _queue(request: Request) -> ArqRedis:
    queue: ArqRedis = request.app.state.queue
    return queue


QueueDep = Annotated[ArqRedis, Depends(_queue)]


DEFAULT_QUEUE = "backplane:queue"


def create_queue(redis_url: str) -> ArqRedis:
    """An arq client that connects lazily, so the API starts (and later recovers) while Redis is down."""
    from redis.asyncio import ConnectionPool

    return ArqRedis(ConnectionPool.from_url(redis_url), default_queue_name=DEFAULT_QUEUE)
