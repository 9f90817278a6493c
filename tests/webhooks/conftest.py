"""Webhook tests: a receiving endpoint served for real on loopback, and the worker's own context."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.core.queue import DEFAULT_QUEUE
from backplane.events.service import record_event
from backplane.webhooks.tasks import dispatch_task
from backplane.workers.settings import WorkerSettings
from tests.fixtures.auth import Account
from tests.fixtures.http_server import LoopbackServer
from tests.fixtures.worker import run_burst_worker


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """A customer's webhook endpoint: keeps every request; answers with queued answers, else 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: deque[Answer] = deque()
        self._server = LoopbackServer(
            Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])]), name="webhook-receiver"
        )

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            Received(path=request.url.path, headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        )
        answer = self._answers.popleft() if self._answers else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    def reset(self) -> None:
        self.received.clear()
        self._answers.clear()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def answer(self, *answers: Answer | int) -> None:
        self._answers.extend(a if isinstance(a, Answer) else Answer(status=a) for a in answers)

    def url(self, path: str = "/hooks") -> str:
        return self._server.url + path

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    _receiver_server.reset()
    return _receiver_server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receiver is on loopback, which deliveries refuse unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set."""
    return settings.model_copy(update={"webhook_allow_private_targets": True})


@pytest.fixture
async def worker_ctx(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """The context a worker's tasks get, built by the worker's own startup."""
    queue = await create_pool(RedisSettings.from_dsn(settings.redis.url), default_queue_name=DEFAULT_QUEUE)
    ctx: dict[str, Any] = {"settings": settings, "redis": queue}
    await WorkerSettings.on_startup(ctx)
    yield ctx
    await WorkerSettings.on_shutdown(ctx)
    await queue.aclose()


async def record(settings: Settings, organization_id: str, type_: str, data: dict[str, Any], **kw: Any) -> str:
    """An event, recorded as the other domains record theirs."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            event = record_event(session, uuid.UUID(organization_id), type_, data, **kw)
        return event.id
    finally:
        await engine.dispose()


async def queued_jobs(queue: ArqRedis) -> dict[str, float]:
    """Queued `webhooks.deliver` job ids and when they are due (epoch seconds)."""
    return {
        job_id.decode(): score / 1000
        for job_id, score in await queue.zrange(DEFAULT_QUEUE, 0, -1, withscores=True)
        if job_id.startswith(b"webhooks.deliver:")
    }


async def run_due(settings: Settings, queue: ArqRedis) -> int:
    """Run the jobs due now with a real worker, leaving deferred ones (later retries) queued."""
    due = await queue.zcount(DEFAULT_QUEUE, "-inf", time.time() * 1000)
    if due == 0:
        return 0
    worker = await run_burst_worker(settings, max_jobs=due)
    return worker.jobs_complete


async def dispatch_and_deliver(worker_ctx: dict[str, Any]) -> int:
    """What the worker does in its next few seconds: dispatch new events, run the due attempts."""
    await dispatch_task(worker_ctx)
    return await run_due(worker_ctx["settings"], worker_ctx["redis"])


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def verify_guide(payload: str, signature: str, secret: str) -> bool:
    """The platform guide's `verify_webhook`, unchanged."""
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    provided = signature.replace("sha256=", "")
    return hmac.compare_digest(expected, provided)


async def create_webhook(
    client: httpx.AsyncClient, account: Account | dict[str, str], url: str, events: list[str] | None = None, **body: Any
) -> dict[str, Any]:
    headers = account.headers if isinstance(account, Account) else account
    response = await client.post("/v1/webhooks", json={"url": url, "events": events or ["*"], **body}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
