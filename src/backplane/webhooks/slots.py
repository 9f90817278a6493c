"""At most WEBHOOK_ENDPOINT_CONCURRENCY attempts in flight to one endpoint, across every worker, and none
while the endpoint's circuit breaker is open.

Without a cap, an endpoint that answers slowly (or lets each request time out) would soon hold
every worker slot, and every other customer's deliveries would wait behind it. With the cap it
holds a few slots at most: an attempt that finds its endpoint full does not wait in a worker slot
but joins the endpoint's waiting set and ends; each attempt that finishes wakes the oldest waiter
with a new job.

The breaker is for an endpoint that fails fast (connection refused, an immediate 5xx): the cap does
not slow it down, and each of its deliveries would cost a claim, a request and a logged attempt, all
in vain. After WEBHOOK_BREAKER_FAILURES consecutive failed attempts it opens: the endpoint's
deliveries join its waiting set unattempted (a Redis call each, no PostgreSQL) until the back-off ends
(WEBHOOK_BREAKER_BACKOFF_SECONDS: 10 s, doubling after each failed probe up to 5 min). Then one of
them is attempted alone, the probe (`webhooks.probe`, queued for the back-off's end when it opens):
its success closes the breaker and wakes as many waiters as the endpoint has slots, which then go on
as usual; its failure opens the breaker again. A parked delivery keeps its attempt number and its
place in the retry schedule (an attempt not made is not counted), and is never lost: it is pending in
PostgreSQL, and the sweep queues a probe for the endpoint of a waiter it finds overdue.

Redis keys per endpoint: `webhooks:slots:<id>`, a sorted set of the deliveries in flight scored by
when their lease ends (a crashed worker's slot frees itself), `webhooks:waiting:<id>`, the
deliveries waiting, scored by when they first asked, and `webhooks:breaker:<id>`, a hash: `failures`
(consecutive), and while open `open_until`, `backoff` (ms) and the `probe` under way. The two Lua
scripts keep each check and change atomic across workers; redis-py's Lock is a mutex, not a counting
semaphore with leases, hence these few lines rather than a library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.redis import run_scripts

# KEYS: slots, waiting, breaker. ARGV: now (ms), limit, delivery id, lease end (ms), waiting ttl (ms), take over
# ('1': a slot the delivery already holds is renewed and taken; '0': it is left to its lease), wait ('1': a
# delivery that gets no slot joins the waiting set; '0': it does not, and the caller hands it over later).
# 1: a new slot (as the probe, while the breaker is open), 2: the slot it held, 0: it waits (or, not waiting,
# got none).
_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
if held and ARGV[6] == '0' then return 2 end
local function wait()
  if ARGV[7] == '1' then
    redis.call('ZADD', KEYS[2], 'NX', now, ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[5])
  end
  return 0
end
local probing = false
if not held then
  local b = redis.call('HMGET', KEYS[3], 'open_until', 'probe', 'probe_until')
  if b[1] then
    local busy = b[2] and b[2] ~= ARGV[3] and tonumber(b[3]) > now
    if now < tonumber(b[1]) or busy then return wait() end
    probing = true
  end
end
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[3])
  if probing then redis.call('HSET', KEYS[3], 'probe', ARGV[3], 'probe_until', ARGV[4]) end
  if held then return 2 end
  return 1
end
return wait()
"""

# KEYS: slots, waiting, breaker. ARGV: delivery id, outcome ('ok', 'fail' or '-': no attempt made), now (ms),
# failures that open the breaker, first back-off (ms), longest back-off (ms), limit, breaker ttl (ms).
# Returns {opened until (ms; 0: it did not open), woken delivery ids...}.
_RELEASE = """
local now = tonumber(ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
local b = redis.call('HMGET', KEYS[3], 'open_until', 'probe', 'backoff')
local open_until = b[1] and tonumber(b[1])
if b[2] == ARGV[1] then redis.call('HDEL', KEYS[3], 'probe', 'probe_until') end
if ARGV[2] == 'ok' then
  redis.call('DEL', KEYS[3])
  if open_until then
    local free = tonumber(ARGV[7]) - redis.call('ZCARD', KEYS[1])
    local woken = {}
    if free > 0 then woken = redis.call('ZPOPMIN', KEYS[2], free) end
    local result = {0}
    for i = 1, #woken, 2 do result[#result + 1] = woken[i] end
    return result
  end
elseif ARGV[2] == 'fail' then
  local failures = redis.call('HINCRBY', KEYS[3], 'failures', 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  local backoff = nil
  if open_until and b[2] == ARGV[1] then
    backoff = math.min(tonumber(b[3]) * 2, tonumber(ARGV[6]))
  elseif not open_until and failures >= tonumber(ARGV[4]) then
    backoff = tonumber(ARGV[5])
  end
  if backoff then
    local opened = now + backoff
    redis.call('HSET', KEYS[3], 'open_until', opened, 'backoff', backoff)
    return {opened}
  end
end
if open_until and (now < open_until or redis.call('HEXISTS', KEYS[3], 'probe') == 1) then
  return {0}
end
local woken = redis.call('ZPOPMIN', KEYS[2])
return {0, woken[1]}
"""

WAITING_TTL_MS = 7 * 86400 * 1000  # a waiting set nobody touches for a week is dropped
BREAKER_TTL_MS = 7 * 86400 * 1000  # and a breaker (its failures) nobody updates for a week

Pair = tuple[str, str]  # (delivery id, endpoint id)
Outcome = Literal["ok", "fail", "-"]  # of the attempt that held the slot; "-": none was made


@dataclass(slots=True)
class Released:
    """What giving slots back did: the deliveries woken (each to be attempted now), and the breakers
    that opened, with when their back-off ends (a probe is due then)."""

    woken: list[Pair] = field(default_factory=list)
    opened: dict[str, datetime] = field(default_factory=dict)


def waiting_key(endpoint_id: str) -> str:
    return keys.webhook_waiting(endpoint_id)


def _keys(endpoint_id: str) -> list[str]:
    return [keys.webhook_slots(endpoint_id), waiting_key(endpoint_id), keys.webhook_breaker(endpoint_id)]


class EndpointSlots:
    def __init__(
        self,
        redis: Redis,
        *,
        limit: int,
        lease_seconds: float,
        breaker_failures: int = 5,
        breaker_backoff_seconds: tuple[float, float] = (10.0, 300.0),
    ) -> None:
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)
        self.breaker_failures = breaker_failures
        self.backoff_ms = (int(breaker_backoff_seconds[0] * 1000), int(breaker_backoff_seconds[1] * 1000))

    async def acquire(self, endpoint_id: str, delivery_id: str) -> bool:
        """Take a slot for this delivery's attempt (or take over the one it has: a job run again after
        its worker died); False: the endpoint is full, or its breaker open, and the delivery waits."""
        return bool(await self._acquire(keys=_keys(endpoint_id), args=self._acquire_args(delivery_id, take_over=True)))

    async def release(self, endpoint_id: str, delivery_id: str, outcome: Outcome) -> Released:
        """Give the slot back after an attempt that went `outcome`; the delivery that waited longest (or,
        when this success closed the breaker, as many as there are free slots), which the caller wakes."""
        return await self.release_many([(delivery_id, endpoint_id, outcome)])

    async def acquire_many(self, wanted: list[Pair], *, wait: bool = True) -> list[Pair]:
        """`acquire` for many (delivery id, endpoint id) pairs in one round trip; those that got a new
        slot. The others wait in their endpoint's waiting set (unless `wait` is False: then the caller
        hands them over later), or already had a slot: someone else is on them (a job, another worker's
        pump), who gives that slot back. Such a slot keeps the lease it has: the holder may have died (a
        worker killed before its claim), and renewing the lease at each hand-over (the sweep makes one
        every few seconds) would keep that slot, and the delivery, for ever."""
        if not wanted:
            return []
        granted = await run_scripts(
            self._redis,
            [
                (self._acquire, [3, *_keys(endpoint_id), *self._acquire_args(delivery_id, take_over=False, wait=wait)])
                for delivery_id, endpoint_id in wanted
            ],
        )
        return [pair for pair, got in zip(wanted, granted, strict=True) if got == 1]

    async def release_many(self, held: list[tuple[str, str, Outcome]]) -> Released:
        """`release` for many (delivery id, endpoint id, outcome) in one round trip."""
        released = Released()
        if not held:
            return released
        now = int(time.time() * 1000)
        fixed = [now, self.breaker_failures, *self.backoff_ms, self.limit, BREAKER_TTL_MS]
        answers = await run_scripts(
            self._redis,
            [
                (self._release, [3, *_keys(endpoint_id), delivery_id, outcome, *fixed])
                for delivery_id, endpoint_id, outcome in held
            ],
        )
        for (_, endpoint_id, _), (opened, *woken) in zip(held, answers, strict=True):
            if int(opened):
                released.opened[endpoint_id] = datetime.fromtimestamp(int(opened) / 1000, UTC)
            released.woken.extend((_text(w), endpoint_id) for w in woken)
        return released

    def _acquire_args(self, delivery_id: str, *, take_over: bool, wait: bool = True) -> list[str | int]:
        now = int(time.time() * 1000)
        flags = ["1" if take_over else "0", "1" if wait else "0"]
        return [now, self.limit, delivery_id, now + self.lease_ms, WAITING_TTL_MS, *flags]


@dataclass(frozen=True, slots=True)
class Circuit:
    """An endpoint's breaker as its owner sees it (`WebhookRead.circuit_state`)."""

    state: Literal["closed", "open", "half_open"] = "closed"
    consecutive_failures: int = 0
    retry_at: datetime | None = None


async def circuits(redis: Redis, endpoint_ids: list[str]) -> dict[str, Circuit]:
    """The breakers of these endpoints, read in one round trip (closed ones are left out)."""
    if not endpoint_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for endpoint_id in endpoint_ids:
            pipe.hmget(keys.webhook_breaker(endpoint_id), ["failures", "open_until"])
        found = await pipe.execute()
    now = time.time() * 1000
    result: dict[str, Circuit] = {}
    for endpoint_id, (failures, open_until) in zip(endpoint_ids, found, strict=True):
        if not failures and not open_until:
            continue
        if open_until is None:
            result[endpoint_id] = Circuit("closed", int(failures or 0))
            continue
        until = int(open_until)
        state: Literal["open", "half_open"] = "open" if now < until else "half_open"
        result[endpoint_id] = Circuit(state, int(failures or 0), datetime.fromtimestamp(until / 1000, UTC))
    return result


async def reset_breaker(redis: Redis, endpoint_id: str) -> bool:
    """Forget the endpoint's failures and close its breaker; whether it was open."""
    key = keys.webhook_breaker(endpoint_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hexists(key, "open_until")
        pipe.delete(key)
        was_open, _ = await pipe.execute()
    return bool(was_open)


async def forget(redis: Redis, endpoint_id: str) -> None:
    """Drop a deleted endpoint's keys (its slots, waiting set and breaker) rather than leave them to expire."""
    await redis.delete(*_keys(endpoint_id))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
