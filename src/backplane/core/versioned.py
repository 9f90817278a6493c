"""Redis hashes that cache PostgreSQL rows for the hot paths, safe against a fill racing a change.

A cached hash carries a `gen` field. A change to the rows it copies, once committed, calls
`invalidate`: the hash is emptied and its `gen` goes up. A request that missed the cache reads `gen`
first (the hot path's script returns it with the miss), then PostgreSQL, then `fill`s the hash only
if `gen` is still what it read: a fill that read PostgreSQL before a change committed cannot put the
old state back after the change's invalidation. Every hash expires after `ttl_ms` without a fill, a
bound on how long a lost invalidation (Redis unreachable right after a commit) can last.

Hand-written: redis-py has no versioned cache, and caching libraries (e.g. aiocache) know no
check-and-set against a generation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backplane.core.effects import effects

logger = logging.getLogger(__name__)
T = TypeVar("T")

# An emptied hash keeps its generation this long: far longer than any fill that could race it.
INVALIDATED_TTL_MS = 3_600_000
_PENDING = "versioned_to_invalidate"

# KEYS: the hashes; ARGV: ttl ms
_INVALIDATE = """
for _, key in ipairs(KEYS) do
  local gen = (tonumber(redis.call('HGET', key, 'gen')) or 0) + 1
  redis.call('DEL', key)
  redis.call('HSET', key, 'gen', gen)
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return #KEYS
"""

# KEYS: the hash; ARGV: the generation the filler saw, ttl ms, then field, value pairs -> 1 filled, 0 stale
_FILL = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


async def invalidate(redis: Redis, keys: Iterable[str]) -> None:
    keys = sorted(set(keys))
    if keys:
        await redis.eval(_INVALIDATE, len(keys), *keys, str(INVALIDATED_TTL_MS))  # type: ignore[misc]


async def fill(redis: Redis, key: str, generation: str, fields: Mapping[str, str], ttl_ms: int) -> bool:
    """Write `fields` unless the hash was invalidated since `generation` was read; whether it wrote."""
    args: list[str] = [generation, str(ttl_ms)]
    for name, value in fields.items():
        args += [name, value]
    return bool(int(await redis.eval(_FILL, 1, key, *args)))  # type: ignore[misc]


def invalidate_after_commit(session: AsyncSession | Session, keys: Iterable[str]) -> None:
    """Invalidate these hashes once `session` commits: one Redis call per commit, whatever the count.
    Works from ORM flush hooks (a sync `Session` shares its `info` with its `AsyncSession`)."""
    pending: set[str] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = set()
        redis: Redis | None = session.info.get("redis")

        async def _invalidate() -> None:
            stale = session.info.pop(_PENDING, set())
            if redis is None or not stale:
                return
            try:
                await invalidate(redis, stale)
            except Exception:  # committed: the copies expire on their own instead
                logger.exception("could not invalidate %d cached copies after a commit", len(stale))

        effects(session).call(_invalidate)
    pending.update(keys)


class SharedFills:
    """Concurrent misses of the same cache entry share one fill: the first runs `fill()`, those that
    miss while it runs wait for its outcome (its value or its refusal) instead of each reading
    PostgreSQL. A machine fleet starting at once on a license Redis has not seen would otherwise make
    one read per machine, every one of them queued behind the others for the pool's connections.

    Nothing is kept once the fill ends: the next miss reads again (Redis is the cache, and a result
    kept here would outlive an invalidation). A caller that goes away (cancelled) does not cancel the
    fill the others wait for. Key by everything the fill depends on (for a versioned hash, the
    generation the miss saw). Hand-written: asyncio has no single-flight primitive, and the caching
    libraries (async-lru, aiocache) keep results after the call.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, fill: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(fill())
            running.add_done_callback(lambda done: self._ended(key, done))
        result: T = await asyncio.shield(running)
        return result

    def _ended(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved, even when every waiter went away: no "never retrieved" warning
