"""Seat leasing benchmark: `make bench`, or `uv run python bench/seats.py` against a running server.

Against the server at --url (with rate limits off: RATE_LIMITS_ENABLED=false; DATABASE_URL and
REDIS_URL the server's, for `backplane staff grant` and the direct Redis phases):

1. the framework's ceiling and the seat routes beside it, with wrk (Debian's package; skipped with a
   note when it is not installed): --seconds of bare liveness (`GET /api/v1/health/`), then --rounds
   rounds of acquires (a new machine each), heartbeats (round the acquired sessions), releases (each
   session once) and liveness again; each seat run's throughput is printed as a ratio of the mean of
   the liveness runs just before and after it, and each route's median ratio over the rounds against
   its target (heartbeat 0.8x, acquire and release 0.6x); beside each run, the
   CPU time per request of the API process (--pid; `make bench-seats` passes it) and of Redis, and
   the ratio of liveness's API CPU per request to the route's (steadier than req/s on a shared machine);
2. heartbeats at a steady --rate per second for --paced-seconds with hey (Debian's package;
   skipped without it): --rate / 50 processes each sending 50 a second on a session of its own,
   started 1/50 s + 1/rate apart so that their requests interleave evenly; p50, p99; and just
   before, liveness at the same pace from the same clients (the machine's own floor in the same run);
3. the same operations from this Python client (--requests each, --concurrency at once), beside
   liveness, for machines without wrk;
4. heartbeat latency against the number of live leases: for each --leases count N, a license with N
   seats is filled to N live leases (N - concurrency written straight into Redis with the key layout
   of `backplane.licenses.leases`, the rest acquired over HTTP), then its HTTP-acquired sessions are
   heartbeated --requests times over HTTP, and --requests times by calling the heartbeat Lua script
   directly (with Redis's own time per run from INFO commandstats: the cost without HTTP or network
   noise). Heartbeat cost must not grow with N. Finally the first license is measured again, now
   with every other license's leases live too (cost must not grow with the total either).

The benchmark's user is made platform staff (`backplane staff grant`) to issue its licenses.
Everything it creates in Redis is removed at the end (sessions acquired over HTTP are released over
HTTP, so their history rows in PostgreSQL end as `released`). The user, organization and licenses it
registers stay in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _api import call_json, sign_up
from _proc import cpu_seconds, postgres_cpu
from redis.asyncio import Redis

from backplane.licenses.leases import EXPIRY_INDEX, Leases, _keys, lease_key

MAX_SEATS = 100_000  # LicenseCreate.seats upper bound
WRK_SCRIPTS = Path(__file__).parent / "wrk"
LIVENESS = "/api/v1/health/"
FILL_BATCH = 5_000
PACED_WORKER_RATE = 50  # requests a second from each hey process of the paced phase
CLIENT_VERSION = "bench-1.0"


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


@dataclass
class FilledLicense:
    license_id: str
    organization_id: str
    seats: int
    direct: list[str] = field(default_factory=list)  # sessions written straight into Redis
    http: list[str] = field(default_factory=list)  # sessions acquired over HTTP (still live)
    fill_seconds: float = 0.0


class Bench:
    def __init__(self, args: argparse.Namespace, client: httpx.AsyncClient, redis: Redis) -> None:
        self.args = args
        self.client = client
        self.redis = redis
        self.leases = Leases(redis)
        self.tag = secrets.token_hex(4)
        self.refresh = ""
        self.api_key = ""  # --caller key: the key the wrk runs send
        self.organization_id = ""
        # Sessions acquired over HTTP and not yet released: session id -> license id.
        self.open_sessions: dict[str, str] = {}
        self.filled: list[FilledLicense] = []
        self.licenses: list[str] = []  # every license created, for cleanup

    # -- HTTP helpers ---------------------------------------------------------------------------

    async def _json(self, method: str, path: str, expect: int, body: Any = None) -> Any:
        return await call_json(self.client, method, path, expect, body)

    async def sign_up(self) -> None:
        tokens = await sign_up(self.client, "Seat Bench", self.tag)
        self.refresh = tokens["refresh"]
        me = await self._json("GET", "/v1/users/me", 200)
        self.organization_id = me["organization"]["id"]
        # Live licenses come from subscriptions or platform staff: the benchmark's user becomes staff.
        grant = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "backplane.cli",
            "staff",
            "grant",
            me["user"]["email"],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await grant.communicate()
        if grant.returncode != 0:
            sys.exit(f"bench: backplane staff grant failed: {err.decode()[-300:]}")

    async def fresh_token(self) -> None:
        """A new access token before each phase, so a long run never meets ACCESS_TOKEN_TTL_SECONDS."""
        tokens = await self._json("POST", "/api/v1/auth/token/refresh/", 200, {"refresh": self.refresh})
        self.client.headers["Authorization"] = f"Bearer {tokens['access']}"

    async def seat_token(self) -> str:
        """What the wrk runs send as their bearer token: the access token, or (--caller key) an API key."""
        if self.args.caller == "key":
            if not self.api_key:
                body = {"name": f"seat bench {self.tag}", "scopes": ["read", "write"]}
                self.api_key = (await self._json("POST", "/v1/api-keys", 201, body))["key"]
            return self.api_key
        return str(self.client.headers["Authorization"]).removeprefix("Bearer ")

    async def create_license(self, seats: int) -> dict[str, Any]:
        created: dict[str, Any] = await self._json(
            "POST",
            "/api/v1/licenses/",
            201,
            {
                "tier": "enterprise",
                "seats": seats,
                "organization_id": self.organization_id,
                "metadata": {"bench": self.tag},
            },
        )
        self.licenses.append(created["id"])
        return created

    def _acquire_body(self, key: str, hardware_id: str) -> dict[str, str]:
        return {
            "license_key": key,
            "hardware_id": hardware_id,
            "ip_address": "127.0.0.1",
            "client_version": CLIENT_VERSION,
        }

    # -- measuring ------------------------------------------------------------------------------

    async def measure(
        self,
        name: str,
        items: Iterable[Any],
        call: Callable[[Any], Awaitable[httpx.Response]],
        expect: int,
        on_ok: Callable[[Any, httpx.Response], object] | None = None,
    ) -> Phase:
        """Run `call(item)` for every item with --concurrency clients; a fixed number of requests."""
        phase = Phase(name)
        pending = iter(list(items))

        async def client() -> None:
            for item in pending:  # shared: each item is taken by exactly one client
                started = time.perf_counter()
                try:
                    response = await call(item)
                except httpx.HTTPError as exc:
                    phase.errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code == expect:
                    phase.latencies.append(elapsed)
                    if on_ok is not None:
                        on_ok(item, response)
                else:
                    phase.errors[str(response.status_code)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(self.args.concurrency)))
        phase.wall = time.perf_counter() - started
        return phase

    async def baseline(self) -> Phase:
        await self.fresh_token()
        # Warm-up: open every connection of the pool before timing anything.
        await self.measure("warm-up", range(self.args.concurrency * 4), lambda _: self.client.get(LIVENESS), 200)
        return await self.measure(
            f"GET {LIVENESS}", range(self.args.requests), lambda _: self.client.get(LIVENESS), 200
        )

    # -- wrk: the framework's ceiling and the seat routes beside it -----------------------------------

    async def wrk(self, name: str, script: str, *args: str, seconds: float | None = None) -> WrkRun:
        duration = seconds or self.args.seconds
        command = [
            "wrk",
            f"-t{self.args.wrk_threads}",
            f"-c{self.args.wrk_connections}",
            f"-d{duration:g}s",  # wrk takes whole units only: 12s, not 12.0s
            "--latency",
            "-s",
            str(WRK_SCRIPTS / script),
            self.args.url,
            "--",
            *args,
        ]
        server_cpu, redis_cpu, database_cpu = self.server_cpu(), await self.redis_cpu(), postgres_cpu()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            sys.exit(f"bench: {' '.join(command)} failed: {err.decode()[-300:]}")
        run = WrkRun.parse(name, out.decode())
        run.server_cpu = self.server_cpu() - server_cpu if self.args.pid else math.nan
        run.redis_cpu = await self.redis_cpu() - redis_cpu
        run.database_cpu = postgres_cpu() - database_cpu
        return run

    def server_cpu(self) -> float:
        """CPU seconds (user and system) the API process has used so far; NaN without --pid."""
        return cpu_seconds([self.args.pid]) if self.args.pid else math.nan

    async def redis_cpu(self) -> float:
        """CPU seconds Redis has used so far (its main thread and the rest: INFO cpu)."""
        cpu = await self.redis.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    async def wrk_cycle(self) -> list[WrkRound]:
        """--rounds rounds of liveness, acquire, heartbeat, release, then liveness once more: each seat
        run is compared with the liveness runs just before and after it, so that drift in what else the
        machine does (it moves a single run by 20% here) counts for less."""
        rounds: list[WrkRound] = []
        before = await self.wrk("liveness", "get.lua", LIVENESS)
        for _ in range(self.args.rounds):
            seat_runs = await self.seat_runs()
            after = await self.wrk("liveness", "get.lua", LIVENESS)
            rounds.append(WrkRound(before, after, seat_runs))
            before = after
        return rounds

    async def seat_runs(self) -> list[WrkRun]:
        """Acquire, heartbeat and release with wrk, on a license of their own."""
        await self.fresh_token()
        token = await self.seat_token()
        license_ = await self.create_license(MAX_SEATS)
        acquire = await self.wrk("acquire", "acquire.lua", license_["key_string"], token, f"bench-{self.tag}-wrk")
        acquired: list[str] = await self.redis.zrange(_keys(license_["id"])[0], 0, -1)
        for sid in acquired:
            self.open_sessions[sid] = license_["id"]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="bench-sessions-") as listed:
            listed.write("\n".join(acquired) + "\n")
            listed.flush()
            heartbeat = await self.wrk("heartbeat", "heartbeat.lua", listed.name, token)
        # Releases need a session each, more than acquires made in the same time: the license is topped
        # up with leases written straight into Redis (what releasing them does is the same).
        filled = FilledLicense(license_["id"], license_["organization"], MAX_SEATS)
        self.filled.append(filled)
        await self.fill(filled, MAX_SEATS - len(acquired))
        with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="bench-sessions-") as listed:
            listed.write("\n".join([*acquired, *filled.direct]) + "\n")
            listed.flush()
            release = await self.wrk("release", "release.lua", listed.name, token, str(self.args.wrk_threads))
        live = set(await self.redis.zrange(_keys(license_["id"])[0], 0, -1))
        for sid in acquired:
            if sid not in live:
                self.open_sessions.pop(sid, None)
        filled.direct = [sid for sid in filled.direct if sid in live]
        return [acquire, heartbeat, release]

    async def paced_heartbeats(self) -> tuple[Phase, Phase] | None:
        """--rate heartbeats a second for --paced-seconds with hey (Debian's package; None without it):
        --rate / 50 workers, each sending 50 a second, round one session each; and before them the
        liveness route at the same pace from the same workers (the machine's own floor, same run)."""
        if not shutil.which("hey"):
            return None
        await self.fresh_token()
        workers = max(1, self.args.rate // 50)
        license_ = await self.create_license(workers)
        sessions = []
        for i in range(workers):
            body = self._acquire_body(license_["key_string"], f"bench-{self.tag}-paced-{i}")
            sid = (await self._json("POST", "/api/v1/licenses/acquire/", 200, body))["session_id"]
            sessions.append(sid)
            self.open_sessions[sid] = license_["id"]
        liveness = await self._paced(f"liveness at {workers * 50}/s", "GET", [LIVENESS] * workers)
        heartbeats = await self._paced(
            f"heartbeat at {workers * 50}/s",
            "PATCH",
            [f"/api/v1/licenses/sessions/{sid}/heartbeat/" for sid in sessions],
        )
        return liveness, heartbeats

    async def _paced(self, name: str, method: str, paths: list[str]) -> Phase:
        """One hey process per path, each sending 50 requests a second for --paced-seconds."""
        phase = Phase(name)
        started = time.perf_counter()
        runs = [
            asyncio.create_subprocess_exec(
                "hey",
                "-z",
                f"{self.args.paced_seconds:g}s",
                "-c",
                "1",
                "-q",
                str(PACED_WORKER_RATE),
                "-o",
                "csv",
                "-m",
                method,
                "-H",
                f"Authorization: {self.client.headers['Authorization']}",
                f"{self.args.url}{path}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for path in paths
        ]
        # Each hey process sends on its own ticker from the moment it starts: started together, they
        # would send in bursts of one request each every 1/50 s, not at a steady rate. Each starts one
        # period and one slot after the one before, so that their requests interleave evenly.
        period = 1 / PACED_WORKER_RATE
        slot = period / len(runs)
        processes = []
        for i, run in enumerate(runs):
            await asyncio.sleep(max(0.0, started + i * (period + slot) - time.perf_counter()))
            processes.append(await run)
        outputs = await asyncio.gather(*(process.communicate() for process in processes))
        phase.wall = time.perf_counter() - started
        for out, _ in outputs:
            for line in out.decode().splitlines()[
                1:
            ]:  # response-time,DNS+dialup,DNS,Request-write,...,status-code,offset
                fields = line.split(",")
                if len(fields) < 8:
                    continue
                if fields[6] == "200":
                    phase.latencies.append(float(fields[0]))
                else:
                    phase.errors[fields[6]] += 1
        return phase

    async def seat_cycle(self) -> list[Phase]:
        n = self.args.requests
        await self.fresh_token()
        license_ = await self.create_license(n)
        key, license_id = license_["key_string"], license_["id"]
        sessions: list[str] = []

        def acquired(_: Any, response: httpx.Response) -> None:
            sid = response.json()["session_id"]
            sessions.append(sid)
            self.open_sessions[sid] = license_id

        acquire = await self.measure(
            "acquire",
            (f"bench-{self.tag}-{i}" for i in range(n)),
            lambda hw: self.client.post("/api/v1/licenses/acquire/", json=self._acquire_body(key, hw)),
            200,
            acquired,
        )
        if len(set(sessions)) != len(sessions):
            sys.exit("bench: two acquires with distinct hardware ids got the same session")
        await self.fresh_token()
        heartbeat = await self.measure(
            "heartbeat",
            list(sessions),
            lambda sid: self.client.patch(f"/api/v1/licenses/sessions/{sid}/heartbeat/"),
            200,
        )
        await self.fresh_token()
        release = await self.measure(
            "release",
            list(sessions),
            lambda sid: self.client.delete(f"/api/v1/licenses/sessions/{sid}/"),
            200,
            lambda sid, _: self.open_sessions.pop(sid, None),
        )
        return [acquire, heartbeat, release]

    # -- live-lease scaling ---------------------------------------------------------------------

    async def redis_now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def fill(self, filled: FilledLicense, count: int) -> None:
        """Write `count` live leases into Redis exactly as the acquire script would, pipelined."""
        ttl_ms = self.args.fill_ttl * 1000
        now = await self.redis_now_ms()
        expires = now + ttl_ms
        zkey, hwkey, metakey = _keys(filled.license_id)
        for start in range(0, count, FILL_BATCH):
            chunk = [
                (str(uuid.uuid4()), f"bench-{self.tag}-fill-{start + i}") for i in range(min(FILL_BATCH, count - start))
            ]
            filled.direct.extend(sid for sid, _ in chunk)  # recorded first: cleanup finds them even on failure
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(zkey, {sid: expires for sid, _ in chunk})
            pipe.hset(hwkey, mapping={hw: sid for sid, hw in chunk})
            pipe.hset(
                metakey,
                mapping={
                    sid: json.dumps({"hw": hw, "acq": now, "hb": None, "n": 0}, separators=(",", ":"))
                    for sid, hw in chunk
                },
            )
            pipe.zadd(EXPIRY_INDEX, {f"{filled.license_id}:{sid}": expires for sid, _ in chunk})
            for sid, hw in chunk:
                pipe.hset(
                    lease_key(sid), mapping={"license": filled.license_id, "org": filled.organization_id, "hw": hw}
                )
                pipe.pexpire(lease_key(sid), ttl_ms)
            await pipe.execute()

    async def filled_license(self, live: int) -> FilledLicense:
        await self.fresh_token()
        license_ = await self.create_license(live)
        filled = FilledLicense(license_["id"], license_["organization"], live)
        self.filled.append(filled)
        over_http = min(self.args.concurrency, live)
        started = time.perf_counter()
        await self.fill(filled, live - over_http)
        filled.fill_seconds = time.perf_counter() - started
        for i in range(over_http):  # the sessions that are measured: real ones, with history rows
            body = self._acquire_body(license_["key_string"], f"bench-{self.tag}-http-{live}-{i}")
            sid = (await self._json("POST", "/api/v1/licenses/acquire/", 200, body))["session_id"]
            filled.http.append(sid)
            self.open_sessions[sid] = filled.license_id
        in_redis = await self.redis.zcard(_keys(filled.license_id)[0])
        if in_redis != live:
            sys.exit(f"bench: license filled to {in_redis} live leases, wanted {live}")
        return filled

    async def evalsha_stats(self) -> tuple[int, int]:
        """(calls, microseconds) Redis has spent in EVALSHA since its stats were last reset."""
        stats = (await self.redis.info("commandstats")).get("cmdstat_evalsha", {})
        return int(stats.get("calls", 0)), int(stats.get("usec", 0))

    async def heartbeat_at(self, filled: FilledLicense) -> tuple[Phase, Phase, float, int]:
        """HTTP heartbeats and direct heartbeat-script calls on a filled license's HTTP sessions."""
        n = self.args.requests
        sessions = filled.http
        await self.fresh_token()
        http = await self.measure(
            "heartbeat",
            (sessions[i % len(sessions)] for i in range(n)),
            lambda sid: self.client.patch(f"/api/v1/licenses/sessions/{sid}/heartbeat/"),
            200,
        )
        script = Phase("heartbeat script")
        license_id = uuid.UUID(filled.license_id)
        calls_before, usec_before = await self.evalsha_stats()
        started = time.perf_counter()
        for i in range(n):  # one at a time: Redis runs scripts one at a time anyway
            sid = uuid.UUID(sessions[i % len(sessions)])
            t0 = time.perf_counter()
            result = await self.leases.heartbeat(license_id, sid, self.args.fill_ttl)
            elapsed = time.perf_counter() - t0
            if result is None:
                script.errors["gone"] += 1
            else:
                script.latencies.append(elapsed)
        script.wall = time.perf_counter() - started
        # Redis's own time per script run (no network, no client): the purest figure of the cost.
        # Mean over every EVALSHA in the window, so it is only exact when nothing else uses this Redis.
        calls_after, usec_after = await self.evalsha_stats()
        in_redis_us = (usec_after - usec_before) / max(1, calls_after - calls_before)
        total_live = await self.redis.zcard(EXPIRY_INDEX)
        return http, script, in_redis_us, total_live

    # -- cleanup --------------------------------------------------------------------------------

    async def cleanup(self) -> None:
        # Sessions acquired over HTTP: released over HTTP, so their history says `released`.
        if self.open_sessions:
            try:
                await self.fresh_token()
                await self.measure(
                    "cleanup",
                    list(self.open_sessions),
                    lambda sid: self.client.delete(f"/api/v1/licenses/sessions/{sid}/"),
                    200,
                    lambda sid, _: self.open_sessions.pop(sid, None),
                )
            except (httpx.HTTPError, SystemExit) as exc:
                print(f"bench: releasing over HTTP failed ({exc!r}); deleting the Redis keys", file=sys.stderr)
        # Whatever is left (the filled leases, and anything HTTP could not release) is deleted.
        leftovers: dict[str, list[str]] = {}
        for sid, license_id in self.open_sessions.items():
            leftovers.setdefault(license_id, []).append(sid)
        for filled in self.filled:
            leftovers.setdefault(filled.license_id, []).extend(filled.direct)
        for license_id, sids in leftovers.items():
            for start in range(0, len(sids), FILL_BATCH):
                chunk = sids[start : start + FILL_BATCH]
                pipe = self.redis.pipeline(transaction=False)
                pipe.zrem(EXPIRY_INDEX, *(f"{license_id}:{sid}" for sid in chunk))
                pipe.unlink(*(lease_key(sid) for sid in chunk))
                await pipe.execute()
        # Every license here is the benchmark's own: its three keys go whole, and any expiry entry
        # still naming one (an acquire whose answer was lost) goes with its lease key.
        for license_id in self.licenses:
            await self.redis.unlink(*_keys(license_id))
            stray = [entry async for entry, _ in self.redis.zscan_iter(EXPIRY_INDEX, match=f"{license_id}:*")]
            if stray:
                await self.redis.zrem(EXPIRY_INDEX, *stray)
                await self.redis.unlink(*(lease_key(entry.split(":", 1)[1]) for entry in stray))
        self.open_sessions.clear()
        await self.record_ended()

    async def record_ended(self) -> None:
        """What the worker's `licenses.record_ended` cron would have done, since no worker runs beside
        this bench: the released leases written into their history rows. Left open, the rows pile up
        run after run, and a worker whose Redis has no leases yet restores every one of them."""
        from backplane.core.config import get_settings
        from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
        from backplane.licenses.seats import record_ended_batch

        engine = create_engine(get_settings())
        total = 0
        try:
            sessionmaker = create_sessionmaker(engine)
            while True:
                async with unit_of_work(sessionmaker) as session:
                    ended = await record_ended_batch(session, self.leases)
                if not ended:
                    break
                await self.leases.ack_ended(len(ended))
                total += len(ended)
        finally:
            await engine.dispose()
        print(f"wrote {total:,} ended leases into their history, as the worker's cron would")


@dataclass
class WrkRun:
    name: str
    requests: int
    seconds: float
    not_ok: int  # non-2xx answers
    socket_errors: str
    p50_ms: float
    p99_ms: float
    server_cpu: float = math.nan  # CPU seconds the API process used during the run
    redis_cpu: float = math.nan  # and Redis
    database_cpu: float = math.nan  # and PostgreSQL's processes on this machine (NaN: none here)

    @property
    def rps(self) -> float:
        return (self.requests - self.not_ok) / self.seconds if self.seconds else 0.0

    def cpu_us(self, seconds: float) -> float:
        """Microseconds of `seconds` per request answered."""
        return seconds * 1e6 / self.requests if self.requests else math.nan

    @classmethod
    def parse(cls, name: str, text: str) -> WrkRun:
        total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
        if total is None:
            sys.exit(f"bench: cannot read wrk's output:\n{text}")
        not_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        errors = re.search(r"Socket errors: (.*)", text)
        return cls(
            name=name,
            requests=int(total.group(1)),
            seconds=_seconds(float(total.group(2)), total.group(3)),
            not_ok=int(not_ok.group(1)) if not_ok else 0,
            socket_errors=errors.group(1).strip() if errors else "-",
            p50_ms=_latency_ms(text, "50%"),
            p99_ms=_latency_ms(text, "99%"),
        )


@dataclass
class WrkRound:
    """One round of the wrk cycle: the seat runs between two liveness runs."""

    before: WrkRun
    after: WrkRun
    seats: list[WrkRun]

    @property
    def ceiling(self) -> float:
        return (self.before.rps + self.after.rps) / 2

    @property
    def liveness_cpu_us(self) -> float:
        return (self.before.cpu_us(self.before.server_cpu) + self.after.cpu_us(self.after.server_cpu)) / 2

    def run(self, name: str) -> WrkRun:
        return next(run for run in self.seats if run.name == name)

    def ratio(self, name: str) -> float:
        return self.run(name).rps / self.ceiling

    def cpu_ratio(self, name: str) -> float:
        run = self.run(name)
        return self.liveness_cpu_us / run.cpu_us(run.server_cpu)


def _seconds(value: float, unit: str) -> float:
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def _latency_ms(text: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return _seconds(float(found.group(1)), found.group(2)) * 1000 if found else math.nan


# -- output -------------------------------------------------------------------------------------

TARGETS = {"heartbeat": 0.8, "acquire": 0.6, "release": 0.6}


def print_wrk(rounds: Sequence[WrkRound], args: argparse.Namespace) -> None:
    print(
        f"\nSeat routes against the framework's ceiling (wrk, {args.wrk_threads} threads, {args.wrk_connections} "
        f"connections, {args.seconds:g} s each; {len(rounds)} rounds, each seat run against the mean of the "
        "liveness runs just before and after it)"
    )
    # CPU per request: the API process's (--pid) and Redis's. Unlike req/s, it hardly moves when other
    # work shares the machine, so its ratio (liveness's API CPU over the route's) is the steadier
    # figure of what the route costs the API process beside the bare endpoint.
    header = (
        f"{'run':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x ceiling':>9} {'target':>7} "
        f"{'API us/req':>10} {'Redis us':>8} {'PG us':>6} {'x CPU':>6}  errors"
    )
    print(header)
    print("-" * len(header))
    _print_run(rounds[0].before, "liveness")
    for number, round_ in enumerate(rounds, 1):
        for run in round_.seats:
            _print_run(run, f"{run.name} {number}", round_.ceiling, round_.liveness_cpu_us)
        _print_run(round_.after, "liveness")
    print(
        "(release: each acquired session once, so its run ends when they are all released; API us/req: the API "
        "process's CPU per request (--pid), Redis's and PostgreSQL's; x CPU: liveness's API CPU over the route's)"
    )
    print(f"\nMedian of {len(rounds)} rounds (min-max), against liveness:")
    for name, target in TARGETS.items():
        ratios = [round_.ratio(name) for round_ in rounds]
        cpu = [round_.cpu_ratio(name) for round_ in rounds]
        median = statistics.median(ratios)
        print(
            f"  {name:<10} {median:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}), target {target:.1f}x: "
            f"{'met' if median >= target else 'not met'}; x CPU {statistics.median(cpu):.2f} "
            f"({min(cpu):.2f}-{max(cpu):.2f})"
        )


def _print_run(run: WrkRun, label: str, ceiling: float | None = None, live_cpu: float | None = None) -> None:
    """A row of the wrk table; a seat run's with its ratios to its round's liveness (`ceiling`, `live_cpu`)."""
    target = TARGETS.get(run.name)
    errors = f"non-2xx {run.not_ok}; socket {run.socket_errors}" if run.not_ok else f"socket {run.socket_errors}"
    api_us = run.cpu_us(run.server_cpu)
    ratio = f"{run.rps / ceiling:.2f}" if ceiling else ""
    cpu_ratio = f"{live_cpu / api_us:.2f}" if live_cpu else ""
    print(
        f"{label:<12} {run.requests:>9,} {run.rps:>8.0f} {run.p50_ms:>8.2f} {run.p99_ms:>8.2f} "
        f"{ratio:>9} {f'{target:.1f}x' if target else '':>7} {api_us:>10.0f} "
        f"{run.cpu_us(run.redis_cpu):>8.0f} {run.cpu_us(run.database_cpu):>6.0f} {cpu_ratio:>6}  {errors}"
    )


def print_paced(liveness: Phase, heartbeats: Phase) -> None:
    print(
        f"\n{heartbeats.name}, {heartbeats.requests:,} heartbeats over {heartbeats.wall:.1f} s (one API process): "
        f"p50 {heartbeats.pct(50):.2f} ms, p99 {heartbeats.pct(99):.2f} ms (target under 10 ms), "
        f"max {max(heartbeats.latencies, default=math.nan) * 1000:.2f} ms; errors {_errors(heartbeats)}"
    )
    print(
        f"{liveness.name} just before, the same clients: p50 {liveness.pct(50):.2f} ms, "
        f"p99 {liveness.pct(99):.2f} ms, max {max(liveness.latencies, default=math.nan) * 1000:.2f} ms; "
        f"errors {_errors(liveness)}; heartbeat p50 {heartbeats.pct(50) / liveness.pct(50):.2f}x, "
        f"p99 {heartbeats.pct(99) / liveness.pct(99):.2f}x of liveness's"
    )


def _errors(phase: Phase) -> str:
    return ", ".join(f"{code}x{count}" for code, count in sorted(phase.errors.items())) or "-"


def print_table(baseline: Phase, phases: Sequence[Phase], concurrency: int) -> None:
    print(f"\nSeat operations vs the baseline (concurrency {concurrency})")
    header = (
        f"{'operation':<18} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 x base':>10} {'req/s x base':>12}  errors"
    )
    print(header)
    print("-" * len(header))
    for phase in [baseline, *phases]:
        p50_ratio = phase.pct(50) / baseline.pct(50)
        rps_ratio = phase.rps / baseline.rps if baseline.rps else math.nan
        print(
            f"{phase.name:<18} {phase.requests:>8,} {phase.rps:>8.0f} {phase.pct(50):>8.2f} {phase.pct(99):>8.2f} "
            f"{p50_ratio:>10.2f} {rps_ratio:>12.2f}  {_errors(phase)}"
        )


@dataclass
class ScaleRow:
    live: int
    total_live: int
    fill_seconds: float | None
    http: Phase
    script: Phase
    in_redis_us: float


def print_scaling(rows: Sequence[ScaleRow], concurrency: int, requests: int) -> None:
    print(
        f"\nHeartbeat vs live leases ({requests:,} heartbeats per row over HTTP with concurrency {concurrency}, "
        f"then {requests:,} calls of the heartbeat script one at a time)"
    )
    header = (
        f"{'license leases':>14} {'all leases':>10} {'fill s':>7} {'HTTP req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'script p50 ms':>13} {'script p99 ms':>13} {'in Redis us':>11}  errors"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        fill = f"{row.fill_seconds:>7.2f}" if row.fill_seconds is not None else f"{'-':>7}"
        errors = [f"HTTP {_errors(row.http)}"] if row.http.errors else []
        errors += [f"script {_errors(row.script)}"] if row.script.errors else []
        print(
            f"{row.live:>14,} {row.total_live:>10,} {fill} {row.http.rps:>10.0f} {row.http.pct(50):>8.2f} "
            f"{row.http.pct(99):>8.2f} {row.script.pct(50):>13.3f} {row.script.pct(99):>13.3f} "
            f"{row.in_redis_us:>11.1f}  {'; '.join(errors) or '-'}"
        )
    largest = max(rows, key=lambda r: (r.live, r.total_live))
    # The smallest license is measured before the largest and again after it (with every lease live):
    # their mean is the baseline, so that a drift of the machine during the run does not read as cost.
    smallest = [row for row in rows if row.live == min(r.live for r in rows)]
    if largest not in smallest:

        def ratio(figure: Callable[[ScaleRow], float]) -> float:
            return figure(largest) / (sum(figure(row) for row in smallest) / len(smallest))

        print(
            f"ratio {largest.live:,} / {smallest[0].live:,} leases (baseline: the mean of its {len(smallest)} "
            f"row{'s' if len(smallest) > 1 else ''}): "
            f"HTTP p50 {ratio(lambda r: r.http.pct(50)):.2f}, HTTP p99 {ratio(lambda r: r.http.pct(99)):.2f}, "
            f"script p50 {ratio(lambda r: r.script.pct(50)):.2f}, script p99 {ratio(lambda r: r.script.pct(99)):.2f}, "
            f"in Redis {ratio(lambda r: r.in_redis_us):.2f} (target: at most 1.1)"
        )
    print(
        "(script: the heartbeat Lua script called straight from here, round trip included; in Redis: "
        "Redis's own mean time per script run, from INFO commandstats)"
    )


# -- main ---------------------------------------------------------------------------------------


def _lease_counts(text: str) -> list[int]:
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of integers, e.g. 1000,100000") from None
    if not counts or any(not 1 <= c <= MAX_SEATS for c in counts):
        raise argparse.ArgumentTypeError(f"each lease count must be between 1 and {MAX_SEATS:,}")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running server")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="the server's REDIS_URL")
    parser.add_argument("--pid", type=int, default=0, help="the API process's id, for its CPU time per request")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients in every phase")
    parser.add_argument("--requests", type=int, default=2000, help="requests per operation")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of wrk runs (the ratios are their median)")
    parser.add_argument("--wrk-connections", type=int, default=64, help="wrk's connections")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--rate", type=int, default=500, help="heartbeats a second in the paced phase")
    parser.add_argument("--paced-seconds", type=float, default=10, help="seconds of the paced phase")
    parser.add_argument(
        "--leases", type=_lease_counts, default=[1000, 100_000], help="live lease counts (default 1000,100000)"
    )
    parser.add_argument(
        "--caller",
        choices=("user", "key"),
        default="user",
        help="who calls the seat routes in the wrk runs: a signed-in user (JWT) or an API key",
    )
    parser.add_argument(
        "--fill-ttl", type=int, default=900, help="seconds the directly written leases live (outlasts the run)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 1024:
        parser.error("--concurrency must be between 1 and 1024")
    if not 1 <= args.requests <= MAX_SEATS:
        parser.error(f"--requests must be between 1 and {MAX_SEATS:,}")
    if args.fill_ttl < 60:
        parser.error("--fill-ttl must be at least 60 seconds")
    return args


async def run(args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    timeout = httpx.Timeout(30.0)
    async with (
        httpx.AsyncClient(base_url=args.url, limits=limits, timeout=timeout) as client,
        Redis.from_url(args.redis_url, decode_responses=True) as redis,
    ):
        health = await client.get("/api/v1/health/")
        health.raise_for_status()
        await redis.ping()
        bench = Bench(args, client, redis)
        started = time.perf_counter()
        print(
            f"Backplane seat benchmark: {args.url} (version {health.json().get('version')}), redis {args.redis_url}, "
            f"concurrency {args.concurrency}, {args.requests:,} requests per operation; "
            f"the wrk runs' caller: {'an API key' if args.caller == 'key' else 'a signed-in user (JWT)'}"
        )
        await bench.sign_up()
        try:
            if shutil.which("wrk"):
                print_wrk(await bench.wrk_cycle(), args)
            else:
                print("\nwrk is not installed (Debian: apt-get install wrk): the ratios below are this Python client's")
            paced = await bench.paced_heartbeats()
            if paced is not None:
                print_paced(*paced)
            else:
                print("\nhey is not installed (Debian: apt-get install hey): no paced heartbeats")
            baseline = await bench.baseline()
            cycle = await bench.seat_cycle()
            print_table(baseline, cycle, args.concurrency)

            rows: list[ScaleRow] = []
            scaled: list[FilledLicense] = []
            for live in args.leases:
                filled = await bench.filled_license(live)
                scaled.append(filled)
                http, script, in_redis_us, total_live = await bench.heartbeat_at(filled)
                rows.append(ScaleRow(live, total_live, filled.fill_seconds, http, script, in_redis_us))
            if len(scaled) > 1:  # the first license again, now with every other lease live too
                first = scaled[0]
                http, script, in_redis_us, total_live = await bench.heartbeat_at(first)
                rows.append(ScaleRow(first.seats, total_live, None, http, script, in_redis_us))
            print_scaling(rows, args.concurrency, args.requests)
        finally:
            cleanup_started = time.perf_counter()
            await bench.cleanup()
            print(
                f"\ncleaned up the benchmark's Redis keys in {time.perf_counter() - cleanup_started:.1f} s; "
                f"total {time.perf_counter() - started:.1f} s"
            )


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
