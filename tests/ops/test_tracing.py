"""Traces: one trace from `POST /v1/jobs` through the queue and the worker to the webhook its completion
sends, exported by the SDK's in-memory exporter; and nothing of OpenTelemetry's SDK when it is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backplane.app import create_app
from backplane.core import tracing
from backplane.core.config import Settings
from tests.fixtures.auth import Api
from tests.fixtures.http_server import serve
from tests.jobs.conftest import JobsWorker, wait_for
from tests.webhooks.conftest import (
    Answer,
    Receiver,
    attempt_at,
    create_webhook,
    dispatch_and_deliver,
    eventually,
    record,
    running_worker,
    worker_context,
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, as OTEL_EXPORTER_OTLP_ENDPOINT turns it on, but into memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    assert tracing.configure("backplane-test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.fixture
async def app(spans: InMemorySpanExporter, settings: Settings) -> AsyncIterator[object]:
    """The app made once tracing is on (as in a process started with the variable set)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def trace_id_of(traceparent: str) -> int:
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert (version, len(trace_id), len(parent_id), int(flags, 16) & 1) == ("00", 32, 16, 1)  # sampled
    return int(trace_id, 16)


def parent_id_of(traceparent: str) -> int:
    return int(traceparent.split("-")[2], 16)


def named(found: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in found if s.name == name]
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def ancestors(found: list[ReadableSpan], span_id: int) -> list[str]:
    """The names from the span `span_id` up to its trace's root."""
    by_id = {s.context.span_id: s for s in found}
    names: list[str] = []
    current = by_id.get(span_id)
    while current is not None:
        names.append(current.name)
        current = by_id.get(parent_of(current) or 0)
    return names


async def test_one_trace_runs_from_the_request_to_the_webhook_its_job_sends(
    spans: InMemorySpanExporter, api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    account = await api.register()
    key = await account.create_key(scopes=["read", "write", "admin"])
    by_key = {"Authorization": f"Bearer {key['key']}"}
    await create_webhook(client, by_key, receiver.url("/traced"), ["job.completed"])
    spans.clear()

    # The jobs worker runs the job; the task worker's listener dispatches its event and its pump sends it.
    async with running_worker(settings):
        jobs = await JobsWorker(settings).start()
        try:
            created = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=by_key)
            assert created.status_code == 201, created.text
            assert (await wait_for(client, account, created.json()["id"]))["status"] == "completed"
            await eventually(lambda: len(receiver.to("/traced")) == 1, "the job.completed delivery")
        finally:
            await jobs.stop()

    [request] = receiver.to("/traced")
    trace_id = trace_id_of(request.headers["traceparent"])
    found = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    post = named(found, "POST /v1/jobs")
    dispatch, run = named(found, "jobs.dispatch"), named(found, "jobs.run")
    completed, deliver = named(found, "job.completed"), named(found, "webhooks.deliver")
    # The chain, each the parent of the next, across the queue and the outbox.
    assert post.parent is None
    assert parent_of(dispatch) == post.context.span_id
    assert parent_of(run) == dispatch.context.span_id
    assert parent_of(completed) == run.context.span_id
    assert parent_of(deliver) == completed.context.span_id
    assert post.resource.attributes["service.name"] == "backplane-test"
    assert run.attributes is not None and run.attributes["backplane.job_id"] == created.json()["id"]
    assert deliver.attributes is not None and deliver.attributes["backplane.attempt"] == "1"
    # The receiver's traceparent names the attempt (`webhooks.deliver`, the span its request is sent in).
    assert ancestors(found, parent_id_of(request.headers["traceparent"]))[-5:] == [
        "webhooks.deliver",
        "job.completed",
        "jobs.run",
        "jobs.dispatch",
        "POST /v1/jobs",
    ]
    # PostgreSQL and Redis calls made on the way are in the trace too.
    systems = {(s.attributes or {}).get("db.system") for s in found}
    assert {"postgresql", "redis"} <= systems
    # The job's run and its attempt ran in the worker's code, not the API's: their spans are consumers
    # and producers of the trace, the request its server span.
    assert (post.kind.name, run.kind.name, deliver.kind.name) == ("SERVER", "CONSUMER", "PRODUCER")


async def test_a_job_that_waited_for_a_slot_joins_the_trace_of_its_own_request(
    spans: InMemorySpanExporter, api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    """The free plan runs one job at a time: the second is handed out by the first one's completion, in
    the worker, and run in the same slot; its run still continues the request that created it."""
    account = await api.register()
    spans.clear()
    worker = await JobsWorker(settings).start()
    try:
        first = await client.post(
            "/v1/jobs", json={"agent_id": "test-sleep", "input_data": {"seconds": 0.5}}, headers=account.headers
        )
        second = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=account.headers)
        for created in (first, second):
            assert created.status_code == 201, created.text
            assert (await wait_for(client, account, created.json()["id"]))["status"] == "completed"
    finally:
        await worker.stop()
    found = list(spans.get_finished_spans())
    runs = {(s.attributes or {})["backplane.job_id"]: s for s in found if s.name == "jobs.run"}
    requests = [s for s in found if s.name == "POST /v1/jobs"]
    assert len(requests) == 2 and requests[0].context.trace_id != requests[1].context.trace_id
    for created, request in zip((first, second), requests, strict=True):
        run = runs[created.json()["id"]]
        assert run.context.trace_id == request.context.trace_id
        assert ancestors(found, run.context.span_id) == ["jobs.run", "jobs.dispatch", "POST /v1/jobs"]


async def test_every_attempt_of_a_delivery_sends_the_traceparent_of_the_event_s_trace(
    spans: InMemorySpanExporter, api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver
) -> None:
    """A retry hours later, by whichever worker, continues the trace that recorded the event."""
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url("/retried"), ["subscription.updated"])
    event_id = await record(settings, account.organization_id, "subscription.updated", {"plan": "pro"})
    receiver.answer(Answer(status=503))
    async with worker_context(settings) as ctx:
        await dispatch_and_deliver(ctx)
        [first] = receiver.to("/retried")
        listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=account.headers)
        [delivery] = listed.json()["data"]
        assert delivery["status"] == "pending"
        later = delivery["next_attempt_at"].replace("Z", "+00:00")
        assert await attempt_at(ctx, delivery["id"], datetime.fromisoformat(later)) == "succeeded"
    first_sent, second_sent = (r.headers["traceparent"] for r in receiver.to("/retried"))
    assert first.headers["traceparent"] == first_sent
    event_span = named(list(spans.get_finished_spans()), "subscription.updated")
    assert event_span.attributes is not None and event_span.attributes["backplane.event_id"] == event_id
    assert trace_id_of(first_sent) == trace_id_of(second_sent) == event_span.context.trace_id
    attempts = [s for s in spans.get_finished_spans() if s.name == "webhooks.deliver"]
    assert [(parent_of(s), (s.attributes or {}).get("backplane.attempt")) for s in attempts] == [
        (event_span.context.span_id, "1"),
        (event_span.context.span_id, "2"),
    ]


async def test_query_strings_stay_out_of_spans(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, api: Api
) -> None:
    """A query string may hold a secret (a reset token, a signed URL's signature): spans keep the path."""
    spans.clear()
    response = await client.get("/api/v1/auth/reset-password/", params={"token": "secret-reset-token-0123"})
    assert response.status_code == 400
    [server] = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert "secret-reset-token-0123" not in json.dumps(dict(server.attributes or {}))


# --- off, and the real exporter ----------------------------------------------------------------------

_PROCESS = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import httpx
    from backplane.app import create_app
    from backplane.core import tracing
    from backplane.core.config import Settings
    import backplane.workers.settings  # the worker's modules too

    SDK = ("opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")

    async def main():
        app = create_app(Settings())
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
                await http.post("/api/v1/auth/token/", json={"email": "x@example.com", "password": "nope"})
        tracing.shutdown()  # flushes the exporter's batch, as the process's exit would
        from opentelemetry import trace
        print(json.dumps({
            "loaded": sorted(m for m in sys.modules if m.startswith(SDK)),
            "provider": type(trace.get_tracer_provider()).__name__,
            "carrier": tracing.carrier(),
        }))

    asyncio.run(main())
    """
)


def run_process(settings: Settings, tmp_path: Any, **env: str) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base |= {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(tmp_path),
        "RATE_LIMITS_ENABLED": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS], env=base | env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_without_an_endpoint_nothing_of_the_sdk_is_loaded(settings: Settings, tmp_path: Any) -> None:
    """An empty value is the same as none (compose files pass `VAR: ${VAR:-}`)."""
    result = run_process(settings, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="")
    assert result == {"loaded": [], "provider": "ProxyTracerProvider", "carrier": None}


def test_with_an_endpoint_spans_go_out_over_otlp_http(settings: Settings, tmp_path: Any) -> None:
    """The real exporter, to a collector on loopback: protobuf batches on /v1/traces, named by OTEL_SERVICE_NAME."""
    received: list[tuple[str, str, bytes]] = []

    async def collect(request: Request) -> Response:
        received.append((request.url.path, request.headers.get("content-type", ""), await request.body()))
        return Response(b"", status_code=200)

    with serve(Starlette(routes=[Route("/v1/traces", collect, methods=["POST"])]), name="otlp-collector") as collector:
        result = run_process(
            settings,
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_SERVICE_NAME="backplane-eu",
        )
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in result["loaded"]
    assert result["provider"] == "TracerProvider"
    assert received, "no batch reached the collector"
    servers: list[str] = []
    services: set[str] = set()
    for path, content_type, body in received:
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
        batch = ExportTraceServiceRequest.FromString(body)
        for resource_spans in batch.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            servers += [
                span.name
                for scope in resource_spans.scope_spans
                for span in scope.spans
                if span.kind == Span.SpanKind.SPAN_KIND_SERVER
            ]
    assert services == {"backplane-eu"}
    # One server span: FastAPI's own telemetry, on now that a global provider is set, steps aside for
    # the instrumentation's.
    assert servers == ["POST /api/v1/auth/token/"]


@pytest.mark.parametrize(
    ("variable", "expected"),
    [(None, "backplane-worker"), ("", "backplane-worker"), ("eu-workers", "eu-workers")],
)
def test_the_service_is_named_by_otel_service_name_else_by_its_process(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, expected: str
) -> None:
    if variable is None:
        monkeypatch.delenv(tracing.SERVICE_NAME_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(tracing.SERVICE_NAME_VARIABLE, variable)
    exporter = InMemorySpanExporter()
    assert tracing.configure(tracing.WORKER_SERVICE, exporter=exporter)
    try:
        with tracing.span("jobs.run", kind="consumer"):
            pass
    finally:
        tracing.shutdown()
    [span] = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == expected
    assert not tracing.active()
