"""What a supervisor can probe about a worker process: a heartbeat key in Redis and an HTTP endpoint.

The monitor checks both stores every few seconds (more often, with capped backoff, while one is
away), so an outage is seen and logged once even when no task happens to touch the store, and
writes `bp:workers:<host>:<pid>` (expiring after three missed beats). `--health-port` serves
`GET /health` (200 while the process runs its loops) and `GET /health/ready` (503 while PostgreSQL
or Redis is unreachable) and `GET /metrics` (Prometheus).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence

import uvicorn
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backplane.core import keys, metrics
from backplane.workers.resilience import Backoff, Stores

logger = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
HEARTBEAT_PREFIX = keys.WORKERS_PREFIX


def heartbeat_key() -> str:
    return keys.worker_heartbeat(f"{socket.gethostname()}:{os.getpid()}")


class Monitor:
    """Probes PostgreSQL and Redis, keeps `stores` current, writes the heartbeat key, and while both
    answer calls `on_beat` (the recovery checks that need both)."""

    def __init__(
        self,
        stores: Stores,
        engine: AsyncEngine,
        redis: Redis,
        *,
        queues: Sequence[str],
        backoff_cap: float,
        on_beat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.stores = stores
        self.engine = engine
        self.redis = redis
        self.queues = list(queues)
        self.on_beat = on_beat
        self._backoff = Backoff(backoff_cap)

    async def run(self) -> None:
        while True:
            healthy = await self.check()
            await asyncio.sleep(BEAT_SECONDS if healthy else self._backoff.next())
            if healthy:
                self._backoff.reset()

    async def check(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            self.stores.database.back()
        except Exception as error:
            self.stores.database.lost(error)
        try:
            await self.redis.set(heartbeat_key(), self._beat(), ex=int(BEAT_SECONDS * 3))
            self.stores.redis.back()
        except Exception as error:
            self.stores.redis.lost(error)
        healthy = self.stores.redis.up and self.stores.database.up
        if healthy and self.on_beat is not None:
            try:
                await self.on_beat()
            except Exception as error:
                if not self.stores.noticed(error):
                    logger.exception("worker recovery check failed")
        return healthy

    def _beat(self) -> str:
        return json.dumps({"pid": os.getpid(), "queues": self.queues, "checks": self.stores.checks()})


def health_app(stores: Stores, alive: Callable[[], bool]) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        ok = alive()
        return JSONResponse({"status": "ok" if ok else "stopped"}, status_code=200 if ok else 503)

    async def ready(request: Request) -> JSONResponse:
        checks = stores.checks()
        ready = alive() and all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return Starlette(routes=[Route("/health", health), Route("/health/ready", ready), Route("/metrics", prometheus)])


class HealthServer(uvicorn.Server):
    """uvicorn inside the worker's own event loop (the worker handles SIGTERM and SIGINT itself)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        super().__init__(uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None, access_log=False))

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
