"""The Redis client shared by every request of one process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, cast

import hiredis
from fastapi import Depends, Request
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript as Script
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

from backplane.core.batching import Batcher, settle
from backplane.core.config import Settings


def create_redis(settings: Settings, *, timed_reads: bool = True) -> Redis:
    """The client. `timed_reads=False`: its reads and writes have no time-out of their own, for a
    caller that bounds each whole exchange itself (`ScriptBatcher`): redis-py spends a timer on every
    reply it reads and a task on every write it makes with a socket time-out, which for a batch of
    seat scripts cost more than parsing the replies."""
    pool = ConnectionPool.from_url(
        settings.redis.url,
        decode_responses=True,
        socket_timeout=settings.redis.timeout_seconds if timed_reads else None,
        socket_connect_timeout=settings.redis.timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    pool.connection_class = _packing_with_hiredis(pool.connection_class)  # the URL's class (TCP, TLS, socket)
    return Redis.from_pool(pool)


class _HiredisPacking(AbstractConnection):
    """Commands packed by hiredis's C encoder. redis-py's asyncio connection packs each command in
    Python (its sync one uses hiredis when it is installed): for a seat heartbeat's script call that
    cost as much as reading the reply. Arguments hiredis would spell differently (floats) or refuse
    (bools, memoryviews), and command names with a space ("CONFIG GET"), are left to redis-py."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        if (isinstance(name, str) and " " not in name) and all(type(arg) in _HIREDIS_TYPES for arg in args):
            return [hiredis.pack_command(cast(Any, args))]  # its stub types the tuple as a 1-tuple
        return super().pack_command(*args)


_HIREDIS_TYPES = frozenset({str, bytes, int})  # `type(...) in`: a bool is an int but redis-py refuses it


_PACKING_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _packing_with_hiredis(base: type[AbstractConnection]) -> type[AbstractConnection]:
    if base not in _PACKING_CLASSES:
        _PACKING_CLASSES[base] = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return _PACKING_CLASSES[base]


async def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


RedisDep = Annotated[Redis, Depends(_redis)]


class ScriptBatcher(Batcher[tuple[Script, list[Any]]]):
    """Runs the Lua scripts that concurrent requests call in one pipeline per batch
    (`core/batching.py`: group commit).

    Under load many seat requests of one process call their script at the same moment; each batch
    goes out as one pipeline (EVALSHA each, in arrival order; each script is still atomic on its own)
    and each caller gets its own reply or error.

    `timeout`: the seconds a whole batch may take, for a client made with `timed_reads=False`. A batch
    that outlasts it fails with redis-py's `TimeoutError` for each of its callers, and its connection
    is dropped (redis-py closes a connection whose read is interrupted), so late replies reach no one.
    """

    def __init__(self, redis: Redis, timeout: float | None = None) -> None:
        super().__init__()
        self.redis = redis
        self.timeout = timeout

    async def __call__(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        return await self._submit((script, [len(keys), *keys, *args]))

    async def _run(self, batch: list[tuple[tuple[Script, list[Any]], asyncio.Future[Any]]]) -> None:
        futures = [future for _, future in batch]
        try:
            replies = await self._execute([call for call, _ in batch])
        except BaseException as error:  # the connection failed: every caller of the batch gets the error
            settle(futures, error)
            if not isinstance(error, Exception):
                raise
            return
        for future, reply in zip(futures, replies, strict=True):
            settle([future], reply if isinstance(reply, Exception) else None, reply)

    async def _execute(self, calls: list[tuple[Script, list[Any]]]) -> list[Any]:
        if self.timeout is None:
            return await run_scripts(self.redis, calls, raise_on_error=False)
        try:
            async with asyncio.timeout(self.timeout):
                return await run_scripts(self.redis, calls, raise_on_error=False)
        except TimeoutError:  # the built-in one, from `asyncio.timeout`: said as redis-py says it
            raise RedisTimeoutError(
                f"Redis did not answer a batch of {len(calls)} scripts in {self.timeout} s"
            ) from None


async def run_scripts(
    redis: Redis, calls: Sequence[tuple[Script, list[Any]]], *, raise_on_error: bool = True
) -> list[Any]:
    """Each (script, [number of keys, *keys, *args]) call in one pipeline, by the script's hash (EVALSHA):
    the replies in order; with `raise_on_error=False`, a call's error stands in place of its reply.

    redis-py's pipeline of scripts first asks Redis whether they are loaded (SCRIPT EXISTS), one round
    trip more on every call. Here a script Redis does not know (it restarted, or its scripts were
    flushed) is loaded, and only the calls that failed for it are sent again."""
    replies = await _evalsha_pipeline(redis, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {calls[i][0] for i in missing}:
            await redis.script_load(script.script)
        again = await _evalsha_pipeline(redis, [calls[i] for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    if raise_on_error:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return replies


async def _evalsha_pipeline(redis: Redis, calls: Sequence[tuple[Script, list[Any]]]) -> list[Any]:
    """The calls written at once on one connection, then their replies read in order; an error reply
    stands in place of its reply. What redis-py's pipeline does, without its per-call bookkeeping
    (a command stack, response callbacks, a retry wrapper), which a seat request paid for each script."""
    pool = redis.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(
            connection.pack_commands(("EVALSHA", script.sha, *args) for script, args in calls)
        )
        replies: list[Any] = []
        for _ in calls:
            try:
                replies.append(await connection.read_response())
            except ResponseError as error:  # the script's error (or NOSCRIPT): the connection is still in step
                replies.append(error)
        return replies
    finally:
        await pool.release(connection)
