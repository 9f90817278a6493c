"""Webhook tests: a receiving endpoint served for real on loopback, and the worker's own context."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.core.queue import DEFAULT_QUEUE
from backplane.core.redis import create_redis
from backplane.events.service import record_event
from backplane.webhooks import delivery as flow
from backplane.webhooks.tasks import dispatch_task
from backplane.workers.run import close_worker
from backplane.workers.settings import WorkerSettings, worker_options
from tests.fixtures.auth import Account
from tests.fixtures.http_server import LoopbackServer
from tests.fixtures.net import refused_port
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
    """A customer's webhook endpoint: keeps every request; answers with queued answers, else 200.

    Like a careful customer, it also deduplicates by `webhook-id`: `processed` lists the ids it acted
    on, once each, in the order it first accepted them (with a 2xx answer).
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.processed: list[str] = []
        self._answers: deque[Answer] = deque()
        self._answers_on: dict[str, deque[Answer]] = {}
        self._server = LoopbackServer(
            Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])]), name="webhook-receiver"
        )

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            Received(path=request.url.path, headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        )
        queued = self._answers_on.get(request.url.path) or self._answers
        answer = queued.popleft() if queued else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        message_id = request.headers.get("webhook-id")
        if 200 <= answer.status < 300 and message_id and message_id not in self.processed:
            self.processed.append(message_id)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    def reset(self) -> None:
        self.received.clear()
        self.processed.clear()
        self._answers.clear()
        self._answers_on.clear()

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def answer(self, *answers: Answer | int) -> None:
        self._answers.extend(a if isinstance(a, Answer) else Answer(status=a) for a in answers)

    def answer_on(self, path: str, *answers: Answer | int) -> None:
        """Answers for requests to `path` only (before the general ones)."""
        queued = self._answers_on.setdefault(path, deque())
        queued.extend(a if isinstance(a, Answer) else Answer(status=a) for a in answers)

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
def dead_port() -> Iterator[int]:
    """A loopback port where connections are refused, held for the test so that no parallel test
    process starts listening on it meanwhile."""
    with refused_port() as port:
        yield port


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    _receiver_server.reset()
    return _receiver_server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receiver is on loopback, which deliveries refuse unless WEBHOOK_ALLOW_PRIVATE_TARGETS is set.
    No jitter, so that retries are due exactly on the schedule (tests of the jitter turn it on)."""
    return settings.model_copy(update={"webhook_allow_private_targets": True, "webhook_retry_jitter": 0.0})


@asynccontextmanager
async def worker_context(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """The context a worker's tasks get, built by the worker's own startup (without the listener that
    dispatches new events at once: these tests dispatch when they choose)."""
    queue = await create_pool(RedisSettings.from_dsn(settings.redis.url), default_queue_name=DEFAULT_QUEUE)
    ctx: dict[str, Any] = {"settings": settings, "redis": queue, "webhook_listener": False}
    await WorkerSettings.on_startup(ctx)
    try:
        yield ctx
    finally:
        await WorkerSettings.on_shutdown(ctx)
        await queue.aclose()


@pytest.fixture
async def worker_ctx(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    async with worker_context(settings) as ctx:
        yield ctx


@asynccontextmanager
async def running_worker(settings: Settings, *, max_jobs: int = 10, listener: bool = True) -> AsyncIterator[Worker]:
    """A real arq worker (not burst) running in the background, as `backplane worker` runs one: with
    the listener that dispatches events the moment they commit, but without the crons."""
    options = worker_options(settings)
    options["ctx"]["webhook_listener"] = listener
    worker = Worker(
        functions=WorkerSettings.functions,
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        queue_name=WorkerSettings.queue_name,
        max_jobs=max_jobs,
        poll_delay=0.05,
        handle_signals=False,
        **options,
    )
    running = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # Let the attempts under way finish (arq cancels what still runs when it stops).
        under_way = [task for task in worker.tasks.values() if not task.done()]
        if under_way:
            await asyncio.wait(under_way, timeout=10)
        worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(running, return_exceptions=True)
        await close_worker(worker)


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, within: float = 30) -> None:
    """Wait until `check()` holds (a generous deadline against hanging, not a timing assertion)."""
    deadline = time.monotonic() + within
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.05)


async def record(
    settings: Settings, organization_id: str, type_: str, data: dict[str, Any], *, wake: bool = False, **kw: Any
) -> str:
    """An event, recorded as the other domains record theirs. With `wake`, the session carries Redis as
    the API's and the workers' sessions do, so that the commit wakes the dispatcher."""
    engine = create_engine(settings)
    redis = create_redis(settings) if wake else None
    try:
        async with unit_of_work(create_sessionmaker(engine, redis=redis)) as session:
            event = record_event(session, uuid.UUID(organization_id), type_, data, **kw)
        return event.id
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.aclose()


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
    """What the worker does in its next few seconds: dispatch new events, run the due attempts. The
    first attempts go to the worker's pump, which sends them in the background: they are waited for
    (a test reading its receiver at once otherwise misses the ones still on their way on a busy machine)."""
    await dispatch_task(worker_ctx)
    ran = await run_due(worker_ctx["settings"], worker_ctx["redis"])
    pump = worker_ctx.get("webhook_pump")
    if pump is not None:
        await eventually(pump.idle, "the pump's deliveries sent and logged")
    return ran


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


async def deliveries(client: httpx.AsyncClient, account: Account, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def detail(client: httpx.AsyncClient, account: Account, hook: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/{hook['id']}/deliveries/{delivery_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def attempt_at(ctx: dict[str, Any], delivery_id: str, when: datetime) -> str | None:
    """The worker's attempt of a delivery as if the clock read `when` (a retry hours from now)."""
    return await flow.attempt(
        ctx["sessionmaker"], ctx["redis"], ctx["webhook_http"], ctx["settings"], ctx["encryptor"], delivery_id, now=when
    )


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)
