"""Prometheus metrics, through prometheus-client: what the API and the workers count and measure.

Every metric is defined here, once, so the names an operator's dashboard reads (deploy/grafana/) are
in one place. The API serves them on `GET /metrics`, or on their own port with METRICS_PORT; a worker
on its `--health-port`. With `serve --workers N` (N > 1) each API process writes its values to files
in PROMETHEUS_MULTIPROC_DIR (the CLI makes one when it is unset) and a scrape of any process reads
them all (prometheus-client's multiprocess mode); a single process keeps them in memory.

Labels are bounded: route templates (never raw paths), agent ids, plans, a handful of outcomes.
Nothing here names an organization, a user or a key.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- HTTP ---------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "backplane_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "backplane_http_request_duration_seconds",
    "Time from a request's arrival to its response's start, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)

# --- seats --------------------------------------------------------------------------------------------
SEAT_OPERATIONS = Counter(
    "backplane_seat_operations", "Seat acquires, heartbeats and releases, by outcome.", ["operation", "outcome"]
)
LIVE_LEASES = Gauge(
    "backplane_seat_leases_live",
    "Seat leases live now (sampled from Redis's expiry index every few seconds by each worker).",
    multiprocess_mode="mostrecent",
)
LEASE_EXPIRIES = Counter("backplane_seat_lease_expiries", "Seat leases that expired without a release.")

# --- rate limits ------------------------------------------------------------------------------------
RATE_LIMIT_DECISIONS = Counter(
    "backplane_rate_limit_decisions", "Rate-limit decisions, by limit and decision.", ["category", "decision"]
)

# --- jobs ---------------------------------------------------------------------------------------------
JOBS_CREATED = Counter("backplane_jobs_created", "Agent jobs created.", ["agent"])
JOBS_STARTED = Counter("backplane_jobs_started", "Agent job runs started (one per attempt).", ["agent"])
JOBS_FINISHED = Counter("backplane_jobs_finished", "Agent job runs finished, by final status.", ["agent", "status"])
JOB_QUEUE_WAIT = Histogram(
    "backplane_job_queue_wait_seconds",
    "From a job's creation (or its retry's due time) to its run's start.",
    ["agent"],
    buckets=JOB_BUCKETS,
)
JOB_RUN_TIME = Histogram("backplane_job_run_seconds", "An agent run's duration.", ["agent"], buckets=JOB_BUCKETS)
JOBS_WAITING = Gauge(
    "backplane_jobs_waiting",
    "Jobs waiting for a slot, by the plan of their organization (sampled by the job sweeper).",
    ["plan"],
    multiprocess_mode="mostrecent",
)
JOBS_WAITING_LONGEST_QUEUE = Gauge(
    "backplane_jobs_waiting_longest_queue",
    "The most jobs any one organization has waiting (sampled by the job sweeper).",
    multiprocess_mode="mostrecent",
)
JOB_DEAD_LETTERS = Counter(
    "backplane_job_dead_letters", "Jobs parked as dead letters after every attempt failed.", ["agent"]
)

# --- webhooks -----------------------------------------------------------------------------------------
WEBHOOK_ATTEMPTS = Counter(
    "backplane_webhook_attempts",
    "Webhook delivery attempts, by outcome: succeeded, http_4xx, http_5xx (the receiver's answer) or error.",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "backplane_webhook_attempt_duration_seconds",
    "How long a receiver took to answer an attempt.",
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_DELIVERIES_FAILED = Counter(
    "backplane_webhook_deliveries_failed", "Webhook deliveries that failed for good (every attempt spent or 410)."
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "backplane_webhook_endpoints_disabled", "Webhook endpoints disabled for failing (or answering 410)."
)

# --- billing ------------------------------------------------------------------------------------------
STRIPE_EVENTS = Counter(
    "backplane_stripe_events",
    "Stripe webhook events, by type and outcome: applied, ignored (a type not handled), duplicate, refused.",
    ["type", "outcome"],
)

# --- stores -------------------------------------------------------------------------------------------
DB_POOL_IN_USE = Gauge(
    "backplane_db_pool_connections_in_use",
    "PostgreSQL connections checked out of the pool now.",
    multiprocess_mode="livesum",
)
REDIS_ERRORS = Counter("backplane_redis_errors", "Redis calls that failed for Redis being unreachable or slow.")

_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # any path no route answers: one series, whatever a scanner sends
_STRIPE_TYPES = re.compile(r"^[a-z_]+(\.[a-z_]+){1,3}$")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's registry."""
    if multiprocess_dir() is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected


def exposition() -> bytes:
    return generate_latest(registry())


def prepare_serving(processes: int, *, host: str, port: int | None) -> None:
    """Before `serve` starts its API processes: with more than one, a directory for their values (the
    operator's PROMETHEUS_MULTIPROC_DIR, emptied, else a temporary one removed at exit), which the
    processes find in their environment; with METRICS_PORT, the metrics served from this process on
    their own port (a thread of prometheus-client's, reading every API process's values)."""
    if processes > 1 or multiprocess_dir() is not None:
        directory = multiprocess_dir()
        if directory is None:
            directory = tempfile.mkdtemp(prefix="backplane-metrics-")
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        prepare_multiprocess_dir(Path(directory))
        os.environ[MULTIPROC_ENV] = directory
    if port is not None:
        start_http_server(port, addr=host, registry=registry())


def prepare_multiprocess_dir(path: Path) -> None:
    """An empty directory for a new server's files: values of an earlier run would be added to this one's."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def forget_dead_processes() -> None:
    """Drop the live gauges of API processes that are gone (uvicorn replaces a process that dies, and
    its supervisor has no hook to say so), so that `livesum` gauges count only live processes."""
    directory = multiprocess_dir()
    if directory is None:
        return
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stripe_event_type(kind: object) -> str:
    """Stripe's event type as a label, or `other` for anything not shaped like one."""
    return kind if isinstance(kind, str) and _STRIPE_TYPES.match(kind) and len(kind) <= 64 else "other"


def http_outcome(status: int | None) -> str:
    if status is None:
        return "error"
    if 200 <= status < 300:
        return "succeeded"
    return f"http_{status // 100}xx"


OUTCOME_OF_STATUS = {
    401: "unauthenticated",
    403: "refused",
    404: "not_found",
    409: "no_seat",
    422: "invalid",
    400: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def seat_outcome(status: int) -> str:
    return OUTCOME_OF_STATUS.get(status, "error")


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, frozenset[str]]]:
    """The path template and methods of every route, through the routers included with their prefixes.

    FastAPI's `iter_route_contexts` gives the same, but it builds each route's effective context (its whole
    dependency tree, with a pydantic adapter per parameter) on the way: seconds of CPU for this app, at every
    start of every app (each test's too), for the two strings a metric label needs. So this walks the routers.
    tests/ops/test_metrics.py checks that both agree."""
    for route in routes:
        included = getattr(route, "original_router", None)  # an include_router() entry (FastAPI's _IncludedRouter)
        if included is not None:
            yield from route_templates(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Route):
            yield prefix + route.path, frozenset(route.methods or ())


def declare_routes(routes: Iterable[BaseRoute], skip: Iterable[str] = ("/metrics",)) -> None:
    """A latency series for every route from the start, so that a dashboard shows a quiet route as zero
    rather than as missing."""
    skipped = frozenset(skip)
    for path, methods in route_templates(routes):
        if path and path not in skipped:
            for method in methods:
                HTTP_LATENCY.labels(path, method)


class RequestMetrics:
    """Counts and times every HTTP request by its route's template (pure ASGI, for the hot paths).

    The labelled children are looked up once and kept: `labels()` takes a lock each time.
    """

    def __init__(self, app: ASGIApp, *, skip: Iterable[str] = ("/metrics",)) -> None:
        self.app = app
        self.skip = frozenset(skip)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def _latency(self, route: str, method: str) -> Any:
        child = self._latencies.get((route, method))
        if child is None:
            child = self._latencies[(route, method)] = HTTP_LATENCY.labels(route, method)
        return child

    def _counter(self, route: str, method: str, status: int) -> Any:
        child = self._counters.get((route, method, status))
        if child is None:
            child = self._counters[(route, method, status)] = HTTP_REQUESTS.labels(route, method, str(status))
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_and_time(message: Message) -> None:
            nonlocal status, start
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - start
                start = -1.0
                self._record(scope, status, elapsed)
            await send(message)

        try:
            await self.app(scope, receive, send_and_time)
        finally:
            if start >= 0:  # no response started
                self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in _HTTP_METHODS else "OTHER"
        self._latency(template, method).observe(elapsed)
        self._counter(template, method, status).inc()
