"""Oversized bodies: `make bench-body-limit`, or `uv run python bench/body_limit.py --pid PID` against a server.

Sends --size-mb (default 20) of JSON-looking bytes to the unauthenticated POST /api/v1/auth/token/,
once with its Content-Length and once chunked (no length), --rounds times each, and as the baseline
a two-byte body `{}` to the same route (400). Prints the median time to the answer of each, their
ratio to the baseline, and the server's VmRSS growth (sampled from /proc/PID/status every 5 ms)
against the body's size. httpx writes a whole body before it reads the answer, so the time includes
pushing the 20 MB through loopback; that the server reads none of it is shown by
tests/test_request_size.py, whose body generator counts what the app pulled.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import httpx
from uploads import MB, RssSampler, rss

PATH = "/api/v1/auth/token/"
CHUNK = 64 * 1024


class Body:
    """`size` bytes produced on demand, counting what was taken."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        block = b" " * CHUNK
        while self.taken < self.size:
            chunk = block[: min(CHUNK, self.size - self.taken)]
            self.taken += len(chunk)
            yield chunk


async def _send(client: httpx.AsyncClient, size: int, *, declared: bool) -> tuple[float, int, int]:
    """(seconds to the answer, status, bytes taken from the body)."""
    body = Body(size)
    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(size)
    started = time.perf_counter()
    try:
        response = await client.post(PATH, content=body, headers=headers)
        status = response.status_code
    except httpx.TransportError:  # the server answered and closed while the body was still going out
        status = 0
    return time.perf_counter() - started, status, body.taken


async def main(args: argparse.Namespace) -> None:
    size = args.size_mb * MB
    async with httpx.AsyncClient(base_url=args.url, timeout=60) as client:
        baseline = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            response = await client.post(PATH, content=b"{}", headers={"Content-Type": "application/json"})
            baseline.append(time.perf_counter() - started)
            assert response.status_code == 400, response.text
        base = statistics.median(baseline)
        print(f"baseline: POST {PATH} with `{{}}` -> 400 in {base * 1000:.1f} ms (median of {args.rounds})")
        for declared in (True, False):
            label = "with Content-Length" if declared else "chunked"
            times, taken, statuses = [], [], set()
            before = rss(args.pid) if args.pid else 0
            peak = before
            for _ in range(args.rounds):
                if args.pid:
                    with RssSampler(args.pid, 0.005) as sampler:
                        seconds, status, took = await _send(client, size, declared=declared)
                    peak = max(peak, sampler.peak)
                else:
                    seconds, status, took = await _send(client, size, declared=declared)
                times.append(seconds)
                taken.append(took)
                statuses.add(status)
            median = statistics.median(times)
            print(
                f"{args.size_mb} MB {label}: status {sorted(statuses)} in {median * 1000:.1f} ms "
                f"({median / base:.1f}x baseline); the client had written {max(taken) / MB:.0f} MB"
            )
            if args.pid:
                print(
                    f"  server VmRSS {before / MB:.1f} MB -> peak {peak / MB:.1f} MB: "
                    f"+{(peak - before) / MB:.2f} MB for a {args.size_mb} MB body ({(peak - before) / size:.1%})"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, default=0, help="the server's process id, to read its memory")
    parser.add_argument("--size-mb", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
