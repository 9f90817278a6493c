"""Agent-job throughput and latency: `make bench-jobs`, or `uv run python bench/jobs.py` against a running server.

The server at --url must run with AGENT_TEST_MODE=true (the no-op agent) and RATE_LIMITS_ENABLED=false.
This script:

1. signs up --orgs organizations and moves each to the enterprise plan through a local-mode
   checkout (25 jobs at once each, no monthly quota), so the plan limit is not what is measured;
2. measures arq alone as the baseline: an in-process arq worker (same poll delay, --concurrency)
   runs while --jobs no-op arq jobs are enqueued in batches of 100: jobs per second and
   enqueue-to-start latency (arq's own enqueue and start times);
3. for each worker count in --workers, starts that many `backplane worker --queues jobs` processes
   (each running --concurrency jobs at once), creates --jobs `test-noop` jobs through
   `POST /v1/jobs/batch` (100 per call, round-robin over the organizations), waits for all of them,
   and reads jobs per second (first queued to last finished) and enqueue-to-start latency
   (queued_at to started_at) from the jobs themselves.

The figures are printed beside the baseline as ratios. The jobs, user and organization stay in
PostgreSQL.
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
from datetime import datetime
from typing import Any

import httpx
from _api import call_json, sign_up
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

POLL_DELAY = 0.1  # JOB_POLL_SECONDS's default; the baseline polls as often
PLAN_SLOTS = 25  # the enterprise plan's concurrent jobs


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(label: str, rate: float, latencies: list[float], baseline: tuple[float, float, float] | None) -> str:
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    text = f"{label:<32} {rate:8.1f} jobs/s   enqueue->start p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    if baseline is not None:
        base_rate, base_p50, base_p99 = baseline
        text += f"   (x{rate / base_rate:.2f} rate, x{p50 / base_p50:.2f} p50, x{p99 / base_p99:.2f} p99 of arq)"
    return text


async def arq_baseline(redis_url: str, jobs: int, concurrency: int) -> tuple[float, list[float]]:
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
        started = time.perf_counter()
        handles = []
        for first in range(0, jobs, 100):  # as the API creates them: batches of 100
            handles += [await pool.enqueue_job("noop", n) for n in range(first, min(jobs, first + 100))]
        for handle in handles:
            await handle.result(timeout=120)
        elapsed = time.perf_counter() - started
        worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(running, return_exceptions=True)
        latencies = []
        for handle in handles:
            result = await handle.result_info()
            if result is None:
                sys.exit("bench: an arq job left no result")
            latencies.append((result.start_time - result.enqueue_time).total_seconds())
        return jobs / elapsed, latencies
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
    response = await client.post(checkout["checkout_url"])  # the account that started it completes it
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


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def run_jobs(clients: list[httpx.AsyncClient], jobs: int) -> tuple[float, list[float]]:
    created: list[tuple[httpx.AsyncClient, str]] = []
    for number, start in enumerate(range(0, jobs, 100)):
        client = clients[number % len(clients)]
        batch = [{"agent_id": "test-noop", "input_data": {"echo": n}} for n in range(start, min(jobs, start + 100))]
        body = await call_json(client, "POST", "/v1/jobs/batch", 201, {"jobs": batch})
        created.extend((client, job["id"]) for job in body["data"])
    finished: list[dict[str, Any]] = []
    for client, job_id in created:
        job = await call_json(client, "GET", f"/v1/jobs/{job_id}?wait=60", 200)
        if job["status"] != "completed":
            sys.exit(f"bench: job {job_id} ended {job['status']}: {job.get('error')}")
        finished.append(job)

    def stamp(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    first = min(stamp(j["queued_at"]) for j in finished)
    last = max(stamp(j["finished_at"]) for j in finished)
    latencies = [(stamp(j["started_at"]) - stamp(j["queued_at"])).total_seconds() for j in finished]
    return len(finished) / (last - first).total_seconds(), latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker process counts")
    parser.add_argument("--orgs", type=int, default=4, help="enterprise organizations sharing the jobs")
    parser.add_argument("--concurrency", type=int, default=25, help="jobs one worker process runs at once")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    rate, latencies = await arq_baseline(args.redis_url, args.jobs, args.concurrency)
    baseline = (rate, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)
    print(
        f"{args.jobs} no-op jobs; {args.concurrency} at once per worker; {args.orgs} organizations x "
        f"{PLAN_SLOTS} plan slots; poll delay {POLL_DELAY} s"
    )
    print(line("arq alone, 1 worker (baseline)", rate, latencies, None))

    clients = [httpx.AsyncClient(base_url=args.url, timeout=90) for _ in range(args.orgs)]
    try:
        for number, client in enumerate(clients):
            await sign_up(client, "Jobs bench", f"jobs{number}")
            await to_enterprise(client)
        for count in (int(n) for n in args.workers.split(",")):
            processes = start_workers(count, args.concurrency)
            try:
                await asyncio.sleep(3)  # let them connect and start polling
                rate, latencies = await run_jobs(clients, args.jobs)
            finally:
                stop_workers(processes)
            print(line(f"backplane, {count} worker(s)", rate, latencies, baseline))
    finally:
        for client in clients:
            await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
