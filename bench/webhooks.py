"""Webhook fan-out: `make bench-webhooks`, or `uv run python bench/webhooks.py` against a running server.

The server at --url and the workers this script starts must reach loopback receivers, so both run
with WEBHOOK_ALLOW_PRIVATE_TARGETS=true (the make target sets it); DATABASE_URL and REDIS_URL are
the server's. This script:

1. starts two healthy receivers (each its own process: records when each `webhook-id` first
   arrived, answers 200) and the dead ones of --dead (refused: nothing listens on its port;
   hanging: it accepts connections and never answers, so each attempt waits for the 10 s timeout);
2. measures the baseline: --events signed-size POSTs straight to a healthy receiver with httpx,
   as many at once as the platform sends to one endpoint (WEBHOOK_ENDPOINT_CONCURRENCY): posts per
   second, request latency, and this process's CPU time per post;
3. signs up, subscribes the two healthy receivers to `job.completed`, starts --workers
   `backplane worker --queues tasks` processes, waits until they have delivered --warm-up events and sit
   idle (their start-up is not measured), records --events events as a burst (as the domains
   do, with `record_event`, in transactions of --batch) and waits until both receivers have every
   event: deliveries per second (first event created to last delivery received), end-to-end
   latency (event created to received) p50 and p99, and the workers' CPU time per delivery;
4. for each dead receiver: subscribes it too, does step 3 again with new events, deletes it (its
   deliveries go with it), and does step 3 once more without it: the healthy receivers' rate and p99
   beside the dead one, against the mean of the healthy-only phases just before and after, show what
   it costs them (a machine that slows down or speeds up during the run does not show as its doing);
5. steps 3 and 4 again at a steady --rate events per second (--paced-events each, one per
   transaction).

Where PostgreSQL runs with autovacuum off (this machine), each phase starts after VACUUM (ANALYZE) of
the tables the deliveries churn, as autovacuum would have done (bench/_db.py). Each phase is printed
beside the baseline, and a summary gives the ratios (a healthy-only figure is the mean of that pace's
healthy-only phases). At the end the webhooks are deleted (their deliveries go with them); the events,
user and organization stay in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from _api import call_json, sign_up
from _db import autovacuum_is_on, tidy
from _proc import cpu_seconds
from sqlalchemy import func, select

EVENT_TYPE = "job.completed"
CHURNED = ("webhook_deliveries", "webhook_attempts", "events")  # what autovacuum would tidy between phases


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- receivers (run as `python bench/webhooks.py --receiver PORT [--hanging]`) -----------------------


def serve_receiver(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    arrivals: dict[str, float] = {}
    duplicates = 0

    async def hook(request: Request) -> Response:
        nonlocal duplicates
        now = time.time()
        await request.body()
        message_id = request.headers.get("webhook-id", "")
        if message_id in arrivals:
            duplicates += 1
        else:
            arrivals[message_id] = now
        return Response("ok")

    async def stats(request: Request) -> Response:
        return JSONResponse({"arrivals": arrivals, "duplicates": duplicates})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/stats", stats)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_hanging(port: int) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass  # read the request, never answer
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(hold, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class Process:
    popen: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def start(*args: str, env: dict[str, str] | None = None) -> Process:
    return Process(
        subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )


async def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    sys.exit(f"bench: nothing listens on port {port}")


async def arrivals(url: str) -> tuple[dict[str, float], int]:
    async with httpx.AsyncClient(timeout=30) as http:
        body = (await http.get(f"{url}/stats")).json()
    return body["arrivals"], body["duplicates"]


# --- measuring -------------------------------------------------------------------------------------


@dataclass
class Figures:
    rate: float
    latencies: list[float]  # seconds
    cpu_ms: float = 0.0  # CPU time per delivery (per post: the baseline) of the process(es) doing it

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99) * 1000


def line(label: str, figures: Figures, unit: str, baseline: Figures | None = None) -> str:
    text = f"{label:<44} {figures.rate:8.1f} {unit}/s   p50 {figures.p50:8.1f} ms   p99 {figures.p99:8.1f} ms"
    if baseline is not None:
        text += (
            f"   (x{figures.rate / baseline.rate:.2f} rate, x{figures.p50 / baseline.p50:.1f} p50,"
            f" x{figures.p99 / baseline.p99:.1f} p99)"
        )
    return text


async def direct_baseline(url: str, posts: int, concurrency: int, body: bytes) -> Figures:
    """httpx straight to the receiver: what one process can post there, with no platform in between."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(posts):
        queue.put_nowait(n)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def poster() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post(
                    url, content=body, headers={"webhook-id": f"base_{n}", "Content-Type": "application/json"}
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Figures(posts / elapsed, latencies, cpu * 1000 / posts)


async def record_events(organization_id: uuid.UUID, count: int, batch: int, rate: float) -> dict[str, float]:
    """Record `count` events as the domains do (committing wakes the dispatcher), `batch` per transaction,
    at `rate` events per second (0: as fast as possible); id -> created (epoch seconds)."""
    from backplane.core.config import get_settings
    from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
    from backplane.core.redis import create_redis
    from backplane.events.service import record_event

    settings = get_settings()
    engine, redis = create_engine(settings), create_redis(settings)
    created: dict[str, float] = {}
    try:
        sessionmaker = create_sessionmaker(engine, redis=redis)
        began = time.monotonic()
        for start_at in range(0, count, batch):
            if rate > 0:
                await asyncio.sleep(max(0.0, began + start_at / rate - time.monotonic()))
            async with unit_of_work(sessionmaker) as session:
                events = [
                    record_event(session, organization_id, EVENT_TYPE, {"id": f"job_{n}", "status": "completed"})
                    for n in range(start_at, min(count, start_at + batch))
                ]
                await session.flush()
            created.update({e.id: e.created_at.timestamp() for e in events})
    finally:
        await redis.aclose()
        await engine.dispose()
    return created


async def wait_for(urls: list[str], ids: set[str], deadline: float) -> None:
    while True:
        got = [set((await arrivals(url))[0]) for url in urls]
        if all(ids <= g for g in got):
            return
        if time.monotonic() > deadline:
            missing = [len(ids - g) for g in got]
            sys.exit(f"bench: deliveries missing after the deadline: {missing}")
        await asyncio.sleep(0.5)


async def warm_up(organization_id: uuid.UUID, healthy: list[str], args: argparse.Namespace) -> None:
    """Wait until the workers deliver --warm-up events (not measured) and then sit idle: their start-up
    (imports, connections, restoring license leases) must not count as the first phase's CPU time, and
    the deliveries table must hold enough rows for PostgreSQL to plan its lookups as it will for the
    rest of the run (on a few pages a sequential scan is the cheapest plan, and a connection keeps it)."""
    created = await record_events(organization_id, args.warm_up, args.batch, 0)
    await wait_for(healthy, set(created), time.monotonic() + args.timeout)
    for _ in range(120):
        used = cpu_seconds(args.worker_pids)
        await asyncio.sleep(1)
        settled = cpu_seconds(args.worker_pids) - used
        if math.isnan(settled) or settled < 0.05 * len(args.worker_pids):  # NaN: a worker is gone; the run will say
            return
    print("bench: the workers did not settle within 2 minutes; their CPU figures include start-up work")


async def attempts_logged(endpoint_id: str) -> tuple[int, int]:
    """(deliveries, attempts) logged for one endpoint."""
    from backplane.core.config import get_settings
    from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
    from backplane.webhooks.models import WebhookAttempt, WebhookDelivery

    engine = create_engine(get_settings())
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            deliveries = await session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            )
            attempts = await session.scalar(
                select(func.count())
                .select_from(WebhookAttempt)
                .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
            )
    finally:
        await engine.dispose()
    return int(deliveries or 0), int(attempts or 0)


async def phase(
    label: str,
    organization_id: uuid.UUID,
    healthy: list[str],
    events: int,
    args: argparse.Namespace,
    rate: float,
    baseline: Figures,
) -> tuple[list[Figures], float]:
    """Record `events` events (a burst in transactions of --batch, or `rate` per second, one per
    transaction) and wait until every healthy receiver has them all; each receiver's figures."""
    if args.tidy is not None:
        await tidy(args.tidy, CHURNED)
    before = [set((await arrivals(url))[0]) for url in healthy]
    cpu = cpu_seconds(args.worker_pids)
    created = await record_events(organization_id, events, 1 if rate else args.batch, rate)
    await wait_for(healthy, set(created), time.monotonic() + args.timeout)
    cpu = cpu_seconds(args.worker_pids) - cpu
    figures = []
    for url, seen_before in zip(healthy, before, strict=True):
        got, _ = await arrivals(url)
        mine = {k: v for k, v in got.items() if k in created and k not in seen_before}
        latencies = [mine[k] - created[k] for k in created]
        span = max(mine.values()) - min(created.values())
        figures.append(Figures(len(mine) / span, latencies))
    # CPU per delivery to the healthy receivers: a dead receiver's attempts count as their overhead.
    cpu_ms = cpu * 1000 / (2 * events)
    total = Figures(sum(f.rate for f in figures), [x for f in figures for x in f.latencies], cpu_ms)
    print(line(f"{label}: all deliveries", total, "deliveries", baseline) + f"   worker CPU {total.cpu_ms:.2f} ms each")
    for n, f in enumerate(figures, start=1):
        print(line(f"{label}: receiver {n}", f, "deliveries"))
    return figures, total.cpu_ms


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--events", type=int, default=10_000, help="events of each burst phase")
    parser.add_argument("--batch", type=int, default=50, help="events per recording transaction (burst)")
    parser.add_argument(
        "--rate", type=float, default=100, help="events per second of the paced phases, one per transaction (0: none)"
    )
    parser.add_argument("--paced-events", type=int, default=1500, help="events of each paced phase")
    parser.add_argument("--warm-up", type=int, default=1000, help="events delivered before the first phase")
    parser.add_argument("--workers", type=int, default=1, help="`backplane worker --queues tasks` processes")
    parser.add_argument(
        "--dead", default="refused,hanging", help="dead receivers to try beside the healthy ones, one phase each"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one phase")
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hanging", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


@dataclass
class Compared:
    """A dead receiver's phase, and the healthy-only phases just before and after it."""

    kind: str
    beside: list[Figures]  # each healthy receiver's
    before: list[Figures]
    after: list[Figures]

    def ratios(self) -> list[tuple[float, float]]:
        """Each healthy receiver's (rate, p99) beside the dead one, against the mean of before and after."""
        return [
            (b.rate / ((x.rate + y.rate) / 2), b.p99 / ((x.p99 + y.p99) / 2))
            for b, x, y in zip(self.beside, self.before, self.after, strict=True)
        ]


@dataclass
class Paced:
    alone: list[list[Figures]]  # each healthy-only phase: each receiver's figures
    cpu_ms: list[float]  # each healthy-only phase: the workers' CPU time per delivery
    compared: list[Compared]

    def mean(self, value: Callable[[list[Figures]], float]) -> float:
        return sum(value(phase) for phase in self.alone) / len(self.alone)


async def pace_phases(
    client: httpx.AsyncClient,
    organization_id: uuid.UUID,
    healthy: list[str],
    dead_urls: dict[str, str],
    args: argparse.Namespace,
    rate: float,
    baseline: Figures,
) -> Paced:
    """A phase with the healthy receivers alone, then for each dead receiver a phase beside them (its
    webhook deleted afterwards, its deliveries with it) followed by another healthy-only phase: each dead
    phase is compared with the healthy-only phases just before and after it, so that a machine that
    slows down or speeds up during the run does not show as the dead receiver's doing."""
    events = args.paced_events if rate else args.events
    pace = f"paced {rate:g}/s" if rate else "burst"
    print(f"\n{pace}: {events} events to each receiver")
    alone, cpu_ms = await phase(f"{pace}, 2 healthy", organization_id, healthy, events, args, rate, baseline)
    result = Paced([alone], [cpu_ms], [])
    for kind, url in dead_urls.items():
        dead = await call_json(client, "POST", "/v1/webhooks", 201, {"url": url, "events": [EVENT_TYPE]})
        try:
            beside, _ = await phase(
                f"{pace}, 2 healthy + {kind}", organization_id, healthy, events, args, rate, baseline
            )
            deliveries, attempts = await attempts_logged(dead["id"])
            print(f"{pace}, {kind} receiver: {deliveries} deliveries, {attempts} failed attempts logged meanwhile")
        finally:
            await client.delete(f"/v1/webhooks/{dead['id']}")
        after, cpu_ms = await phase(f"{pace}, 2 healthy", organization_id, healthy, events, args, rate, baseline)
        result.compared.append(Compared(kind, beside, result.alone[-1], after))
        result.alone.append(after)
        result.cpu_ms.append(cpu_ms)
    return result


def summary(baseline: Figures, workers: int, results: dict[str, Paced]) -> None:
    print(
        "\nsummary (healthy receivers; means of the healthy-only phases; a dead receiver's rate and p99 against the "
        "healthy-only phases just before and after it)"
    )
    for pace, paced in results.items():
        worker = paced.mean(lambda phase: sum(f.rate for f in phase))
        p50, p99 = paced.mean(lambda phase: phase[0].p50), paced.mean(lambda phase: phase[0].p99)
        if pace == "burst":
            print(
                f"  burst: {workers} worker(s) {worker:.0f} deliveries/s = x{worker / baseline.rate:.2f} of httpx "
                f"straight ({baseline.rate:.0f}/s); p50 {p50:.0f} ms, p99 {p99:.0f} ms"
            )
            cpu_ms = sum(paced.cpu_ms) / len(paced.cpu_ms)
            if cpu_ms:
                print(
                    f"  burst: worker CPU {cpu_ms:.2f} ms per delivery "
                    f"({', '.join(f'{c:.2f}' for c in paced.cpu_ms)}), httpx straight {baseline.cpu_ms:.2f} ms "
                    f"per post: x{baseline.cpu_ms / cpu_ms:.2f} (the rate ratio with a core each)"
                )
        else:
            print(f"  {pace}: p50 {p50:.0f} ms, p99 {p99:.0f} ms without a dead receiver")
        for compared in paced.compared:
            ratios = ", ".join(
                f"receiver {n}: x{rate:.2f} rate, x{p99:.2f} p99"
                for n, (rate, p99) in enumerate(compared.ratios(), start=1)
            )
            print(f"  {pace} + {compared.kind}: {ratios}")


async def main(args: argparse.Namespace) -> None:
    from backplane.core.config import get_settings
    from backplane.core.db import create_engine
    from backplane.workers.settings import WorkerSettings

    ports = [free_port(), free_port()]
    kinds = [kind for kind in args.dead.split(",") if kind]
    dead_urls = {kind: f"http://127.0.0.1:{free_port()}/hook" for kind in kinds}
    receivers = [start(__file__, "--receiver", str(port)) for port in ports]
    listening = list(ports)
    if "hanging" in dead_urls:
        hanging_port = int(dead_urls["hanging"].split(":")[2].split("/")[0])
        receivers.append(start(__file__, "--receiver", str(hanging_port), "--hanging"))
        listening.append(hanging_port)
    workers: list[Process] = []
    engine = create_engine(get_settings())  # bench/_db.py: what autovacuum would do between phases
    args.tidy = None if await autovacuum_is_on(engine) else engine
    try:
        for port in listening:
            await wait_for_port(port)
        healthy = [f"http://127.0.0.1:{port}" for port in ports]

        body = b'{"event":"job.completed","type":"job.completed","timestamp":"2024-01-15T10:30:00.000Z",'
        body += b'"webhook_id":"wh_0123456789abcdef01234567","data":{"id":"job_1","status":"completed"}}'
        concurrency = get_settings().webhook_endpoint_concurrency  # what one endpoint gets at once
        baseline = await direct_baseline(f"{healthy[0]}/hook", args.events, concurrency, body)
        print(
            f"{args.workers} worker process(es) (`backplane worker --queues tasks`), {WorkerSettings.max_jobs} jobs "
            f"at once each; dead receivers: {', '.join(kinds) or 'none'} (refused: nothing listens; hanging: "
            "accepts and never answers)"
        )
        print(line(f"baseline: httpx straight to a receiver, {concurrency} at once", baseline, "posts"))

        async with httpx.AsyncClient(base_url=args.url, timeout=60) as client:
            await sign_up(client, "Webhooks bench", "webhooks")
            me = await call_json(client, "GET", "/v1/users/me", 200)
            organization_id = uuid.UUID(me["organization"]["id"])
            hooks = [
                await call_json(client, "POST", "/v1/webhooks", 201, {"url": f"{url}/hook", "events": [EVENT_TYPE]})
                for url in healthy
            ]
            env = {**os.environ, "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
            workers = [
                start("-m", "backplane.cli", "worker", "--queues", "tasks", env=env) for _ in range(args.workers)
            ]
            args.worker_pids = [worker.popen.pid for worker in workers]
            await warm_up(organization_id, healthy, args)
            if args.tidy is not None:
                print(f"autovacuum is off here: each phase starts after VACUUM (ANALYZE) {', '.join(CHURNED)}")
            try:
                results: dict[str, Paced] = {
                    "burst": await pace_phases(client, organization_id, healthy, dead_urls, args, 0, baseline)
                }
                if args.rate:
                    results[f"paced {args.rate:g}/s"] = await pace_phases(
                        client, organization_id, healthy, dead_urls, args, args.rate, baseline
                    )
                summary(baseline, args.workers, results)
            finally:
                for hook in hooks:
                    await client.delete(f"/v1/webhooks/{hook['id']}")
    finally:
        for process in workers + receivers:
            process.stop()
        await engine.dispose()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.receiver and arguments.hanging:
        serve_hanging(arguments.receiver)
    elif arguments.receiver:
        serve_receiver(arguments.receiver)
    else:
        asyncio.run(main(arguments))
