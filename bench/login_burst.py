"""Sign-in burst benchmark: `make bench-login`, or `uv run python bench/login_burst.py` against a running server.

Does a burst of password sign-ins stall the other requests of the same API process? Against the
server at --url (one API process, rate limits off: RATE_LIMITS_ENABLED=false):

1. quiet: one seat session is heartbeated --heartbeats times, one after another, nothing else running;
2. burst: the same while --logins sign-ins (`POST /api/v1/auth/token/` with the right password) are
   kept in flight at every moment, each client signing in again as soon as it is answered;
3. quiet again, so that a drift of the machine between the phases shows.

It prints each phase's heartbeat latency (p50, p99, max) and the burst's p99 against the quiet
p99 measured in the same run: the figure. Argon2 costs a few hundred milliseconds per
verification; done on the event loop, every heartbeat waits behind the verifications in progress.
The user, organization and license it registers stay in PostgreSQL; its seat is released.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from _api import call_json


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, every heartbeat (answered or not)
    heartbeat_errors: Counter[int] = field(default_factory=Counter)  # status code -> count
    logins: int = 0
    login_errors: Counter[int] = field(default_factory=Counter)
    wall: float = 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

    def line(self) -> str:
        logins = f"  sign-ins {self.logins} ({self.logins / self.wall:.1f}/s)" if self.logins else ""
        errors = "".join(
            f"  {what} failed: {dict(counter)}"
            for what, counter in (("heartbeats", self.heartbeat_errors), ("sign-ins", self.login_errors))
            if counter
        )
        return (
            f"{self.name:<8} heartbeats {len(self.latencies):>4}  p50 {self.pct(50):8.1f} ms  "
            f"p99 {self.pct(99):8.1f} ms  max {max(self.latencies) * 1000:8.1f} ms{logins}{errors}"
        )


async def _heartbeats(client: httpx.AsyncClient, session_id: str, count: int, phase: Phase) -> None:
    path = f"/api/v1/licenses/sessions/{session_id}/heartbeat/"
    for _ in range(count):
        started = time.perf_counter()
        response = await client.patch(path)
        phase.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:  # e.g. 503 when the stalled loop let PostgreSQL or Redis time out
            phase.heartbeat_errors[response.status_code] += 1


async def _sign_in_loop(url: str, credentials: dict[str, str], phase: Phase, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while not stop.is_set():
            response = await client.post("/api/v1/auth/token/", json=credentials)
            if response.status_code == 200:
                phase.logins += 1
            else:
                phase.login_errors[response.status_code] += 1


async def _phase(
    name: str, client: httpx.AsyncClient, session_id: str, args: argparse.Namespace, credentials: dict[str, str]
) -> Phase:
    phase = Phase(name)
    stop = asyncio.Event()
    signing_in = [
        asyncio.create_task(_sign_in_loop(args.url, credentials, phase, stop))
        for _ in range(args.logins if name == "burst" else 0)
    ]
    if signing_in:
        await asyncio.sleep(args.warmup)  # every sign-in client has a request in flight
    started = time.perf_counter()
    await _heartbeats(client, session_id, args.heartbeats, phase)
    phase.wall = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*signing_in)
    return phase


async def main(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=args.url, timeout=120, limits=limits) as client:
        credentials = {
            "email": f"bench-login-{secrets.token_hex(4)}@example.com",
            "password": f"Bench-{secrets.token_urlsafe(12)}-9aZ!",
        }
        register = {**credentials, "full_name": "Login burst bench", "company_name": "Bench login"}
        await call_json(client, "POST", "/api/v1/auth/register/", 201, register)
        tokens = await call_json(client, "POST", "/api/v1/auth/token/", 200, credentials)
        client.headers["Authorization"] = f"Bearer {tokens['access']}"
        # The free license a new organization gets (FREE_LICENSE_SEATS, at least 1 for this bench).
        listed = await call_json(client, "GET", "/api/v1/licenses/", 200)
        if not listed["licenses"]:
            sys.exit("bench: the new organization has no free license (FREE_LICENSE_SEATS=0?)")
        license_ = listed["licenses"][0]
        seat = await call_json(
            client,
            "POST",
            "/api/v1/licenses/acquire/",
            200,
            {"license_key": license_["key_string"], "hardware_id": "bench-login-burst", "client_version": "bench"},
        )
        session_id = seat["session_id"]
        try:
            await _heartbeats(client, session_id, 20, Phase("warm-up"))
            phases = [await _phase(name, client, session_id, args, credentials) for name in ("quiet", "burst", "quiet")]
        finally:
            await client.delete(f"/api/v1/licenses/sessions/{session_id}/")

    print(f"seat heartbeat latency at {args.url}, {args.logins} sign-ins in flight during the burst")
    for phase in phases:
        print(phase.line())
    quiet_p99 = max(phases[0].pct(99), phases[2].pct(99))
    burst_p99 = phases[1].pct(99)
    ratio = burst_p99 / quiet_p99
    print(f"heartbeat p99 during the burst / quiet p99 (the worse of the two quiet phases): {ratio:.1f}x")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--logins", type=int, default=20, help="sign-ins kept in flight during the burst")
    parser.add_argument("--heartbeats", type=int, default=200, help="heartbeats per phase, one after another")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds the burst runs before measuring")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args()))
