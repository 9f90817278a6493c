"""Agent-job throughput and latency: `make bench-jobs`, or `uv run python bench/jobs.py` against a running server.

The server at --url must run with AGENT_TEST_MODE=true (the no-op agent) and RATE_LIMITS_ENABLED=false;
DATABASE_URL and REDIS_URL are the server's (the workers this script starts use them too).
This script:

1. signs up --orgs organizations and moves each to the enterprise plan through a local-mode
   checkout (25 jobs at once each, no monthly quota), so the plan limit is not what is measured;
2. measures arq alone as the baseline: an in-process arq worker (same poll delay, --concurrency)
   runs --jobs no-op arq jobs enqueued in batches of 100 (a burst): jobs per second and
   enqueue-to-start latency (arq's own enqueue and start times); then --paced-jobs enqueued at a
   steady --rate per second: enqueue-to-start latency;
3. for each worker count in --workers, starts that many `backplane worker --queues jobs` processes
   (each running --concurrency jobs at once) and creates --jobs `test-noop` jobs through
   `POST /v1/jobs/batch` (100 per call, round-robin over the organizations): jobs per second (first
   queued to last finished) and enqueue-to-start latency (queued_at to started_at);
4. with one worker, creates --paced-jobs jobs one `POST /v1/jobs` at a time at a steady --rate per
   second: enqueue-to-start latency, beside arq's paced figure.

Where PostgreSQL runs with autovacuum off (this machine), each phase starts after VACUUM (ANALYZE) of
the tables the jobs churn, as autovacuum would have done (bench/_db.py). Completion and the stamps are
read from PostgreSQL (one query every 50 ms, off the indexes of unfinished jobs), so waiting costs the
server next to nothing. The figures are printed beside the baseline as ratios, and each phase's CPU time
a job of the workers and of the API process (--pid; `make bench-jobs` passes it). The jobs, user and
organization stay in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import httpx
from _api import call_json, sign_up
from _db import autovacuum_is_on, tidy
from _proc import cpu_seconds
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backplane.core.keys import JOBS_WAKE_CHANNEL  # each jobs worker subscribes once its startup is done

POLL_DELAY = 0.1  # JOB_POLL_SECONDS's default; the baseline polls as often
PLAN_SLOTS = 25  # the enterprise plan's concurrent jobs
CHURNED = ("jobs", "job_transitions", "events")  # what autovacuum would tidy between phases


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _ms(latencies: list[float]) -> tuple[float, float]:
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


def burst_line(label: str, rate: float, latencies: list[float], base_rate: float | None) -> str:
    p50, p99 = _ms(latencies)
    text_ = f"{label:<34} {rate:8.1f} jobs/s   enqueue->start p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    if base_rate is not None:
        text_ += f"   x{rate / base_rate:.2f} of arq's rate"
    return text_


def paced_line(label: str, rate: float, latencies: list[float], base: list[float] | None) -> str:
    p50, p99 = _ms(latencies)
    text_ = f"{label:<34} {rate:8.1f} jobs/s   enqueue->start p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    if base is not None:
        base_p50, base_p99 = _ms(base)
        text_ += f"   (arq: x{p50 / base_p50:.2f} p50, x{p99 / base_p99:.2f} p99)"
    return text_


async def paced(count: int, rate: float, send: Callable[[int], Coroutine[Any, Any, Any]]) -> list[Any]:
    """`send(n)` for n in range(count), the n-th started at n / rate seconds (not after the previous ends)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: list[asyncio.Task[Any]] = []
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        tasks.append(asyncio.create_task(send(n)))
    return list(await asyncio.gather(*tasks))


async def arq_baseline(
    redis_url: str, jobs: int, concurrency: int, paced_jobs: int, rate: float
) -> tuple[float, list[float], list[float]]:
    """arq alone: (burst jobs/s, burst latencies, paced latencies)."""

    async def noop(ctx: dict[str, Any], n: int) -> int:
        return n

    queue = f"bench:arq:{secrets.token_hex(4)}"
    pool: ArqRedis = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue)
    try:
        worker = Worker(
            functions=[func(noop, name="noop")],
            queue_name=queue,
            redis_pool=pool,
            max_jobs=concurrency,
            poll_delay=POLL_DELAY,
            handle_signals=False,
            keep_result=120,
        )
        running = asyncio.create_task(worker.async_run())
        await asyncio.sleep(1)

        async def latencies_of(handles: list[Any]) -> list[float]:
            found = []
            for handle in handles:
                await handle.result(timeout=120)
                result = await handle.result_info()
                if result is None:
                    sys.exit("bench: an arq job left no result")
                found.append((result.start_time - result.enqueue_time).total_seconds())
            return found

        started = time.perf_counter()
        handles: list[Any] = []
        for first in range(0, jobs, 100):  # as the API creates them: batches of 100
            handles += [await pool.enqueue_job("noop", n) for n in range(first, min(jobs, first + 100))]
        for handle in handles:
            await handle.result(timeout=120)
        elapsed = time.perf_counter() - started
        burst = await latencies_of(handles)

        steady = await latencies_of(await paced(paced_jobs, rate, lambda n: pool.enqueue_job("noop", n)))
        worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(running, return_exceptions=True)
        return jobs / elapsed, burst, steady
    finally:
        await pool.delete(queue)
        await pool.aclose()


async def to_enterprise(client: httpx.AsyncClient) -> None:
    checkout = await call_json(
        client,
        "POST",
        "/api/v1/subscriptions/checkout/",
        200,
        {
            "price_id": os.environ.get("STRIPE_PRICE_ENTERPRISE_MONTHLY", "price_enterprise_monthly"),
            "seats": 1,
            "success_url": "http://127.0.0.1/done",
            "cancel_url": "http://127.0.0.1/cancel",
        },
    )
    # The local checkout page, on this server whatever PUBLIC_BASE_URL says; the account that started it completes it.
    url = urlsplit(checkout["checkout_url"])
    response = await client.post(f"{url.path}?{url.query}" if url.query else url.path)
    if response.status_code != 303:
        sys.exit(f"bench: the local checkout answered {response.status_code} (is the server in local billing mode?)")


def start_workers(count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "AGENT_TEST_MODE": "true", "JOB_WORKER_CONCURRENCY": str(concurrency)}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "backplane.cli", "worker", "--queues", "jobs"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]


async def wait_ready(redis_url: str, count: int, subscribed_before: int) -> None:
    """Until `count` more subscribers listen for wake-ups than before (at most a minute): a loaded
    machine may take longer than a fixed pause to start them, and a late worker skews the figures."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            [(_, subscribed)] = await redis.pubsub_numsub(JOBS_WAKE_CHANNEL)
            if subscribed >= subscribed_before + count:
                return
            await asyncio.sleep(0.1)
        print("  (the workers did not all report ready within a minute; measuring anyway)")
    finally:
        await redis.aclose()


async def subscribers(redis_url: str) -> int:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        [(_, subscribed)] = await redis.pubsub_numsub(JOBS_WAKE_CHANNEL)
        return int(subscribed)
    finally:
        await redis.aclose()


class CpuUse:
    """The CPU the API process (its id, 0: not known) and the workers use from now on."""

    def __init__(self, api: int, workers: list[int]) -> None:
        self.api, self.workers = api, workers
        self.api_start, self.workers_start = cpu_seconds([api] if api else []), cpu_seconds(workers)

    def used(self, jobs: int) -> str:
        workers = cpu_seconds(self.workers) - self.workers_start
        said = f"the workers used {workers:.2f} CPU s: {workers / jobs * 1000:.2f} ms a job"
        if self.api:
            api = cpu_seconds([self.api]) - self.api_start
            said += f"; the API {api:.2f} s: {api / jobs * 1000:.2f} ms a job"
        return said


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# The jobs not final yet, counted off the two partial indexes that hold only those (holding a slot, and
# waiting): a few index entries. Counting the ids' rows by status instead read the whole jobs table
# (7 ms of PostgreSQL's CPU at 22,000 rows, 50 times a second), which the service paid for beside it.
_UNFINISHED = text(
    "SELECT (SELECT count(*) FROM jobs WHERE id = ANY(:ids) "
    "AND (status = 'processing' OR (status = 'queued' AND dispatch_token IS NOT NULL))) "
    "+ (SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND status = 'queued' AND dispatch_token IS NULL)"
)


async def finished(engine: AsyncEngine, job_ids: list[str], seconds: float = 120) -> list[Any]:
    """Wait until every job is final (read from PostgreSQL); their (status, queued, started, finished) stamps."""
    deadline = time.monotonic() + seconds
    async with engine.connect() as connection:
        while True:
            left = (await connection.execute(_UNFINISHED, {"ids": job_ids})).scalar_one()
            await connection.rollback()
            if not left:
                break
            if time.monotonic() > deadline:
                sys.exit(f"bench: {left} jobs did not finish within {seconds:g} s")
            await asyncio.sleep(0.05)
        rows = list(
            await connection.execute(
                text("SELECT id, status, queued_at, started_at, finished_at FROM jobs WHERE id = ANY(:ids)"),
                {"ids": job_ids},
            )
        )
    failed = [row for row in rows if row.status != "completed"]
    if failed:
        sys.exit(f"bench: job {failed[0].id} ended {failed[0].status}")
    return rows


async def run_burst(engine: AsyncEngine, clients: list[httpx.AsyncClient], jobs: int) -> tuple[float, list[float]]:
    created: list[str] = []
    for number, start in enumerate(range(0, jobs, 100)):
        client = clients[number % len(clients)]
        batch = [{"agent_id": "test-noop", "input_data": {"echo": n}} for n in range(start, min(jobs, start + 100))]
        body = await call_json(client, "POST", "/v1/jobs/batch", 201, {"jobs": batch})
        created.extend(job["id"] for job in body["data"])
    rows = await finished(engine, created)
    first = min(row.queued_at for row in rows)
    last = max(row.finished_at for row in rows)
    latencies = [(row.started_at - row.queued_at).total_seconds() for row in rows]
    queued = (max(row.queued_at for row in rows) - first).total_seconds()
    print(f"  (the API queued them in {queued:.2f} s; the last finished {(last - first).total_seconds():.2f} s in)")
    return len(rows) / (last - first).total_seconds(), latencies


async def run_paced(
    engine: AsyncEngine, clients: list[httpx.AsyncClient], jobs: int, rate: float
) -> tuple[float, list[float]]:
    async def create(n: int) -> str:
        body = await call_json(
            clients[n % len(clients)], "POST", "/v1/jobs", 201, {"agent_id": "test-noop", "input_data": {"echo": n}}
        )
        job_id: str = body["id"]
        return job_id

    rows = await finished(engine, await paced(jobs, rate, create))
    first = min(row.queued_at for row in rows)
    last = max(row.queued_at for row in rows)
    latencies = [(row.started_at - row.queued_at).total_seconds() for row in rows]
    return (len(rows) - 1) / max(1e-9, (last - first).total_seconds()), latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in each burst")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker process counts for the burst")
    parser.add_argument("--orgs", type=int, default=4, help="enterprise organizations sharing the jobs")
    parser.add_argument("--concurrency", type=int, default=25, help="jobs one worker process runs at once")
    parser.add_argument("--rate", type=float, default=50.0, help="jobs per second in the paced phase")
    parser.add_argument("--paced-jobs", type=int, default=500, help="jobs in the paced phase")
    parser.add_argument("--pid", type=int, default=0, help="the API process's id, for its CPU time per job")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    from backplane.core.config import get_settings
    from backplane.core.db import create_engine

    rate, burst, steady = await arq_baseline(args.redis_url, args.jobs, args.concurrency, args.paced_jobs, args.rate)
    print(
        f"{args.jobs} no-op jobs in a burst, {args.paced_jobs} paced at {args.rate:g}/s; {args.concurrency} at once "
        f"per worker; {args.orgs} organizations x {PLAN_SLOTS} plan slots; poll delay {POLL_DELAY} s; "
        f"{os.cpu_count()} CPUs"
    )
    print(burst_line("arq alone, 1 worker, burst", rate, burst, None))
    print(paced_line(f"arq alone, 1 worker, {args.rate:g}/s", args.rate, steady, None))

    engine = create_engine(get_settings())
    tidying = not await autovacuum_is_on(engine)
    if tidying:
        print(f"autovacuum is off here: each phase starts after VACUUM (ANALYZE) {', '.join(CHURNED)}")
    clients = [httpx.AsyncClient(base_url=args.url, timeout=90) for _ in range(args.orgs)]
    try:
        for number, client in enumerate(clients):
            await sign_up(client, "Jobs bench", f"jobs{number}")
            await to_enterprise(client)
        one_worker: float | None = None  # one worker's burst rate, once measured
        for count in (int(n) for n in args.workers.split(",")):
            before = await subscribers(args.redis_url)
            processes = start_workers(count, args.concurrency)
            try:
                await wait_ready(args.redis_url, count, before)
                if tidying:
                    await tidy(engine, CHURNED)
                await asyncio.sleep(1)  # and polling
                cpu = CpuUse(args.pid, [process.pid for process in processes])
                jobs_per_second, latencies = await run_burst(engine, clients, args.jobs)
                print(burst_line(f"backplane, {count} worker(s), burst", jobs_per_second, latencies, rate))
                print(f"  ({cpu.used(args.jobs)})")
                if count > 1 and one_worker is not None:  # the target: more workers, more jobs a second
                    print(f"  ({count} workers: x{jobs_per_second / one_worker:.2f} of one worker's rate)")
                if count == 1:
                    one_worker = jobs_per_second
                    if tidying:
                        await tidy(engine, CHURNED)
                    cpu = CpuUse(args.pid, [process.pid for process in processes])
                    paced_rate, latencies = await run_paced(engine, clients, args.paced_jobs, args.rate)
                    print(paced_line(f"backplane, 1 worker, {args.rate:g}/s", paced_rate, latencies, steady))
                    print(f"  ({cpu.used(args.paced_jobs)})")
            finally:
                stop_workers(processes)
    finally:
        for client in clients:
            await client.aclose()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
