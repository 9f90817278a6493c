"""One rate limiter for both surfaces: GCRA in a Redis Lua script, on Redis's clock.

Hand-written because no well-kept Python library does GCRA with bursts against Redis (the
`limits` package offers fixed and sliding windows only), and the script is a dozen lines.
A limit allows `burst` requests at once, refilled at `rate` per `period`; the state is one key
per subject holding its theoretical arrival time, so every API process shares it atomically.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from redis.asyncio import Redis
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backplane.core import keys, metrics
from backplane.core.client_ip import client_ip, client_network
from backplane.core.errors import AppError

# The algorithm as a Lua function, so that scripts of the hot paths (the seat leases) apply a limit in
# the same call as their own work. Returns: allowed (1/0), remaining, ms until full (reset), ms until
# the next request is allowed, now (ms).
GCRA_LUA = """
local function gcra(key, interval, capacity, now)
  local tolerance = interval * capacity
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    return {0, 0, tat - now, allow_at - now, now}
  end
  redis.call('SET', key, new_tat, 'PX', math.ceil(new_tat - now) + 1000)
  return {1, math.floor((now + tolerance - new_tat) / interval), new_tat - now, 0, now}
end
"""

# KEYS: the subject's key; ARGV: emission interval ms (period / rate), capacity (burst)
_GCRA = (
    GCRA_LUA
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
"""
)


# Gives back one request a hit took (the caller decided it should not count): moves the subject's
# theoretical arrival time back one interval, never before now. KEYS: the key; ARGV: interval ms.
_REFUND = """
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new_tat = tat - tonumber(ARGV[1])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    rate: int
    period_seconds: int = 60
    burst: int | None = None  # default: the whole rate at once

    @property
    def capacity(self) -> int:
        return self.burst or self.rate

    @property
    def interval_ms(self) -> float:
        return self.period_seconds * 1000 / self.rate


@dataclass(frozen=True, slots=True)
class Decision:
    limit: Limit
    allowed: bool
    remaining: int
    reset_after_ms: int
    retry_after_ms: int
    now_ms: int

    @property
    def reset_at(self) -> int:
        return math.ceil((self.now_ms + self.reset_after_ms) / 1000)

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after_ms / 1000))

    def headers(self) -> dict[str, str]:
        limit = self.limit
        headers = {
            "X-RateLimit-Limit": str(limit.rate),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
            # draft-ietf-httpapi-ratelimit-headers: quota q per window w, remaining r, reset in t seconds
            "RateLimit-Policy": f'"{limit.name}";q={limit.rate};w={limit.period_seconds}',
            "RateLimit": f'"{limit.name}";r={self.remaining};t={max(0, math.ceil(self.reset_after_ms / 1000))}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
            headers["X-RateLimit-Retry-After"] = str(self.retry_after_seconds)
        return headers


def decide(limit: Limit, values: list[int | str]) -> Decision:
    """The Decision of one `gcra` call's return values."""
    allowed, remaining, reset_ms, retry_ms, now_ms = values
    return Decision(
        limit=limit,
        allowed=bool(int(allowed)),
        remaining=int(remaining),
        reset_after_ms=math.ceil(float(reset_ms)),
        retry_after_ms=math.ceil(float(retry_ms)),
        now_ms=int(now_ms),
    )


class RateLimited(AppError):
    status_code, code, title = 429, "RATE_LIMIT_EXCEEDED", "Rate limited"

    def __init__(self, decision: Decision) -> None:
        seconds = decision.retry_after_seconds
        reset_at = datetime.fromtimestamp(decision.reset_at, UTC).isoformat().replace("+00:00", "Z")
        super().__init__(
            f"Rate limit exceeded ({decision.limit.rate} requests per {decision.limit.period_seconds} seconds). "
            f"Try again in {seconds} seconds.",
            details={"limit": decision.limit.rate, "remaining": 0, "reset_at": reset_at},
            headers=decision.headers(),
        )


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_GCRA)
        self._refund = redis.register_script(_REFUND)

    async def hit(self, subject: str, limit: Limit) -> Decision:
        return decide(
            limit, await self._script(keys=[limit_key(subject, limit)], args=[limit.interval_ms, limit.capacity])
        )

    async def refund(self, subject: str, limit: Limit) -> None:
        """Give back the request an allowed `hit` counted, e.g. a sign-in that turned out to succeed."""
        await self._refund(keys=[limit_key(subject, limit)], args=[limit.interval_ms])


def limit_key(subject: str, limit: Limit) -> str:
    return keys.rate_limit(limit.name, subject)


STATE_KEY = "ratelimit"


async def enforce(request: Request, subject: str, limit: Limit) -> None:
    """Count one request of `subject` against `limit`; 429 (RateLimited) past it. Every limited
    route goes through here, so its headers are set and RATE_LIMITS_ENABLED is honoured once."""
    if not request.app.state.settings.rate_limits_enabled:
        return
    limiter: RateLimiter = request.app.state.limiter
    apply(request, await limiter.hit(subject, limit))


def apply(request: Request, decision: Decision) -> None:
    """Put `decision` on the response's headers; 429 if it refused the request."""
    request.scope.setdefault("state", {})[STATE_KEY] = decision
    metrics.RATE_LIMIT_DECISIONS.labels(decision.limit.name, "allowed" if decision.allowed else "limited").inc()
    if not decision.allowed:
        raise RateLimited(decision)


def per_ip(limit: Limit) -> Callable[[Request], Awaitable[None]]:
    """A dependency limiting each client address (behind TRUSTED_PROXIES: the forwarded one)."""

    async def dependency(request: Request) -> None:
        ip = client_network(client_ip(request, request.app.state.trusted_proxies) or "unknown")
        await enforce(request, f"ip:{ip}", limit)

    return dependency


class RateLimitHeadersMiddleware:
    """Puts the request's rate-limit decision on the response, whatever produced the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get("state", {}).get(STATE_KEY)
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
