"""What the Prometheus request metrics cost: `make bench-metrics`, or `uv run python bench/metrics_overhead.py`.

In one process, the same app twice: as it is served, and without its `RequestMetrics` middleware. The
bare liveness route (`GET /api/v1/health/`: the cheapest route, so the middleware's share is the largest
it can be) is called through each in turn (which goes first alternates), --rounds times --requests
requests, in process (ASGI, no network: only the app's own work is timed). Prints each one's CPU time
per request (the best round; CPU time, so that a busy machine's other processes count little) and the
ratio. The settings are the service's (DATABASE_URL, REDIS_URL), which the liveness route does not touch.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from fastapi import FastAPI

from backplane.app import create_app
from backplane.core.config import get_settings
from backplane.core.metrics import RequestMetrics

LIVENESS = "/api/v1/health/"


def _without_metrics(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestMetrics]
    return app


async def _round(client: httpx.AsyncClient, requests: int) -> float:
    # This process's CPU time, not the wall clock's: what other processes of a busy machine do is not counted.
    start = time.process_time()
    for _ in range(requests):
        response = await client.get(LIVENESS)
        assert response.status_code == 200
    return (time.process_time() - start) / requests


async def main(rounds: int, requests: int) -> None:
    settings = get_settings()
    apps = {"with metrics": create_app(settings), "without": _without_metrics(create_app(settings))}
    best: dict[str, float] = {}
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
        for name, app in apps.items()
    }
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for context in contexts:
        await context.__aenter__()
    try:
        for client in clients.values():
            await _round(client, 200)  # warm up
        for number in range(rounds):
            order = list(clients.items())
            for name, client in order if number % 2 else reversed(order):  # neither always goes first
                per_request = await _round(client, requests)
                best[name] = min(best.get(name, per_request), per_request)
    finally:
        for client in clients.values():
            await client.aclose()
        for context in contexts:
            await context.__aexit__(None, None, None)
    for name, seconds in best.items():
        print(f"{name:>13}: {seconds * 1e6:8.1f} us of CPU per liveness request (best of {rounds} x {requests})")
    print(f"ratio (with / without): {best['with metrics'] / best['without']:.3f}x (CPU time of this process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.requests))
