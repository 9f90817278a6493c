"""The Redis client shared by every request of one process."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from backplane.core.config import Settings


def create_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis.url,
        decode_responses=True,
        socket_timeout=settings.redis.timeout_seconds,
        socket_connect_timeout=settings.redis.timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


RedisDep = Annotated[Redis, Depends(_redis)]
