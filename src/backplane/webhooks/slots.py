"""At most WEBHOOK_ENDPOINT_CONCURRENCY attempts in flight to one endpoint, across every worker.

Without a cap, an endpoint that answers slowly (or lets each request time out) would soon hold
every worker slot, and every other customer's deliveries would wait behind it. With the cap it
holds a few slots at most: an attempt that finds its endpoint full does not wait in a worker slot
but joins the endpoint's waiting set and ends; each attempt that finishes wakes the oldest waiter
with a new job. Should a wake-up be lost (a worker killed in between), the delivery is still
pending in PostgreSQL and the sweep queues it again once it is overdue.

Redis keys per endpoint: `webhooks:slots:<id>`, a sorted set of the deliveries in flight scored by
when their lease ends (a crashed worker's slot frees itself), and `webhooks:waiting:<id>`, the
deliveries waiting, scored by when they first asked. The two small Lua scripts keep each check and
change atomic across workers; redis-py's Lock is a mutex, not a counting semaphore with leases,
hence these few lines rather than a library.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from backplane.core import keys

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
if held or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[2], ARGV[3])
  if held then return 2 end
  return 1
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 0
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local woken = redis.call('ZPOPMIN', KEYS[2])
return woken[1]
"""

WAITING_TTL_MS = 7 * 86400 * 1000  # a waiting set nobody touches for a week is dropped


def waiting_key(endpoint_id: str) -> str:
    return keys.webhook_waiting(endpoint_id)


def _keys(endpoint_id: str) -> list[str]:
    return [keys.webhook_slots(endpoint_id), waiting_key(endpoint_id)]


class EndpointSlots:
    def __init__(self, redis: Redis, *, limit: int, lease_seconds: float) -> None:
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)

    async def acquire(self, endpoint_id: str, delivery_id: str) -> bool:
        """Take a slot for this delivery's attempt (or take over the one it has: a job run again after
        its worker died); False: the endpoint is full and the delivery waits."""
        now = int(time.time() * 1000)
        args: list[str | int] = [now, self.limit, delivery_id, now + self.lease_ms, WAITING_TTL_MS]
        return bool(await self._acquire(keys=_keys(endpoint_id), args=args))

    async def release(self, endpoint_id: str, delivery_id: str) -> str | None:
        """Give the slot back; the id of the delivery that waited longest, which the caller wakes."""
        woken = await self._release(keys=_keys(endpoint_id), args=[delivery_id])
        if woken is None:
            return None
        return _text(woken)

    async def acquire_many(self, wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`acquire` for many (delivery id, endpoint id) pairs in one round trip; those that got a new
        slot. The others wait in their endpoint's waiting set, or already had a slot: someone else is
        on them (a job, another worker's pump), who gives that slot back."""
        if not wanted:
            return []
        now = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id, endpoint_id in wanted:
                args: list[str | int] = [now, self.limit, delivery_id, now + self.lease_ms, WAITING_TTL_MS]
                await self._acquire(keys=_keys(endpoint_id), args=args, client=pipe)
            granted = await pipe.execute()
        return [pair for pair, got in zip(wanted, granted, strict=True) if got == 1]

    async def release_many(self, held: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """`release` for many (delivery id, endpoint id) pairs in one round trip; the deliveries woken
        (one per slot given back, where some waited), with their endpoint."""
        if not held:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id, endpoint_id in held:
                await self._release(keys=_keys(endpoint_id), args=[delivery_id], client=pipe)
            woken = await pipe.execute()
        return [(_text(w), endpoint_id) for (_, endpoint_id), w in zip(held, woken, strict=True) if w is not None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
