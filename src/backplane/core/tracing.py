"""OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set, through OpenTelemetry's own packages.

Off (the variable unset or empty), nothing of the SDK, the exporter or the instrumentations is imported
and every function here returns at its first line: no span, no header, no stored context. (FastAPI
itself imports the OpenTelemetry *API*, whatever we do; its own telemetry stays off without a
configured provider, and steps aside for the instrumentation's middleware when there is one.)

On, the FastAPI app, SQLAlchemy engines, redis-py (and so arq) and httpx are instrumented, spans go out
in batches over OTLP/HTTP (protobuf; the gRPC exporter would bring grpcio, a large compiled
dependency, for a transport every collector also takes over HTTP), and the standard OTEL_* variables
(OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_RESOURCE_ATTRIBUTES, ...) apply as the
SDK reads them. OTEL_SERVICE_NAME names the service (default "backplane" for the API,
"backplane-worker" for workers).

A trace crosses processes in W3C trace-context carriers (`{"traceparent": ...}`): a job keeps the
carrier of the request that created it (`jobs.trace_context`), the `jobs.run` message carries the
dispatch's, an event keeps the carrier of its own span (`events.trace_context`), and each of its
deliveries copies it (`webhook_deliveries.trace_context`), so that an attempt made by any worker, hours
later, continues the trace that recorded the event; the attempt sends `traceparent` to the receiver.
So one trace reads `POST /v1/jobs` -> `jobs.dispatch` -> `jobs.run` -> `job.completed` -> `webhooks.deliver`.

Parentless client spans (an arq worker polling Redis, a cron's SQL) are not sampled: a trace starts at
a request, a job run or an event, and an idle worker sends nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from sqlalchemy.ext.asyncio import AsyncEngine

Carrier = dict[str, str]

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME_VARIABLE = "OTEL_SERVICE_NAME"
API_SERVICE = "backplane"
WORKER_SERVICE = "backplane-worker"
# Query strings can hold secrets (signed upload URLs, OAuth codes, a customer's webhook URL token):
# spans keep the path only.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.query")


class _Tracing:
    def __init__(self, provider: TracerProvider, tracer: Tracer) -> None:
        self.provider = provider
        self.tracer = tracer


_active: _Tracing | None = None


def wanted() -> bool:
    """Whether the environment asks for traces (an empty value is the same as none)."""
    return bool(os.environ.get(ENDPOINT_VARIABLE, "").strip())


def active() -> bool:
    return _active is not None


def configure(default_service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process, once: with `exporter` (tests: the SDK's in-memory one, every
    span exported as it ends), else the OTLP/HTTP exporter when the environment asks for it. Whether
    tracing is on."""
    global _active
    if _active is not None:
        return True
    if exporter is None and not wanted():
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    service = os.environ.get(SERVICE_NAME_VARIABLE, "").strip() or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=_sampler())
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)  # for any library that traces through the global API
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    no_metrics = NoOpMeterProvider()  # metrics are Prometheus's (/metrics), not OpenTelemetry's
    RedisInstrumentor().instrument(tracer_provider=provider, meter_provider=no_metrics)
    HTTPXClientInstrumentor().instrument(
        tracer_provider=provider, meter_provider=no_metrics, async_request_hook=_scrub_client_url
    )
    _active = _Tracing(provider, provider.get_tracer("backplane"))
    return True


def shutdown() -> None:
    """Flush what is buffered and turn tracing off again (process exit; tests between each other)."""
    global _active
    if _active is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()
    provider, _active = _active.provider, None
    provider.shutdown()


def install(app: FastAPI) -> None:
    """The API process: tracing on if wanted, and this app's requests traced (server spans)."""
    if not configure(API_SERVICE) or _active is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_active.provider,
        meter_provider=NoOpMeterProvider(),
        server_request_hook=_scrub_server_url,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
        excluded_urls="/api/v1/health,/v1/health,/metrics",  # probes and scrapes, every few seconds
    )


def start_worker(ctx: dict[str, Any]) -> None:
    """A worker process (its startup): tracing on if wanted, its engines' statements traced."""
    if configure(WORKER_SERVICE):
        instrument_engine(ctx["engine"])


def instrument_engine(engine: AsyncEngine) -> None:
    """Spans for `engine`'s statements (the instrumentor's own engine hook, once per engine: its
    `instrument()` is once per process, and engines are made per app, worker or test)."""
    if _active is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    usage = NoOpMeterProvider().get_meter("backplane").create_up_down_counter("db.client.connections.usage")
    tracer = _active.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    EngineTracer(tracer, engine.sync_engine, usage)


def carrier() -> Carrier | None:
    """The current span's context as a carrier to store or send; None when off or outside any span."""
    if _active is None:
        return None
    from opentelemetry import propagate, trace

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    found: Carrier = {}
    propagate.inject(found)
    return found or None


def headers(given: Mapping[str, str]) -> dict[str, str]:
    """`given` with the current context's `traceparent` (and `tracestate`) added when tracing is on."""
    found = carrier()
    return {**given, **found} if found else dict(given)


def span(
    name: str, *, parent: Mapping[str, str] | None = None, kind: str = "internal", **attributes: Any
) -> AbstractContextManager[None]:
    """A span around the block, the current one inside it: the child of `parent` (a stored or carried
    carrier) when given, else of the current span. `kind`: internal, consumer, producer, client.
    Attributes are prefixed `backplane.`; None values are left out."""
    if _active is None:
        return nullcontext()
    return _span(_active, name, parent, kind, attributes)


@contextmanager
def _span(
    active: _Tracing, name: str, parent: Mapping[str, str] | None, kind: str, attributes: dict[str, Any]
) -> Iterator[None]:
    from opentelemetry import context, propagate
    from opentelemetry.trace import SpanKind

    start_in = propagate.extract(dict(parent)) if parent else context.get_current()
    with active.tracer.start_as_current_span(
        name,
        context=start_in,
        kind=SpanKind[kind.upper()],
        attributes={f"backplane.{key}": str(value) for key, value in attributes.items() if value is not None},
    ):
        yield


def mark(name: str, *, parent: Mapping[str, str] | None = None, **attributes: Any) -> Carrier | None:
    """A span for a moment (an event recorded, a job handed out) that what happens later, elsewhere,
    continues: its carrier, to store or send; None when off."""
    if _active is None:
        return None
    with span(name, parent=parent, **attributes):
        return carrier()


def _sampler() -> Any:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind, get_current_span

    class NoLoneClientSpans(Sampler):
        """Parent-based, always on; a client span with no parent (a poll, a cron's query) is dropped."""

        def __init__(self) -> None:
            self._inner = ParentBased(ALWAYS_ON)

        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind is SpanKind.CLIENT and not get_current_span(parent_context).get_span_context().is_valid:
                return SamplingResult(Decision.DROP)
            return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return "NoLoneClientSpans(ParentBased(ALWAYS_ON))"

    return NoLoneClientSpans()


def _scrub(span_: Any) -> None:
    attributes = getattr(span_, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span_.set_attribute(key, value.split("?", 1)[0])
        elif key == "url.query" and value:
            span_.set_attribute(key, "")


def _scrub_server_url(span_: Any, scope: dict[str, Any]) -> None:
    if span_ is not None and span_.is_recording():
        _scrub(span_)


async def _scrub_client_url(span_: Any, request: Any) -> None:
    if span_ is not None and span_.is_recording():
        _scrub(span_)
