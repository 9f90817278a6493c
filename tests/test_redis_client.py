"""The shared Redis client: commands packed by hiredis, byte for byte what redis-py would send."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError, ResponseError

from backplane.core.config import Settings
from backplane.core.redis import create_redis, run_scripts

ARGUMENTS = [
    ("EVALSHA", "0" * 40, 3, "seat:lic:1", "seat:idx", "{x}", "hw-1", 60_000, -1, 2**70),
    ("SET", "k", "naïve ✓ 🚀", "PX", 10),
    ("SET", b"k", b"\x00\xff raw", "NX"),
    ("CONFIG GET", "maxmemory"),  # a name with a space: redis-py splits it
    ("ZADD", "z", 1.5, "m", 0.1, "n"),  # floats: redis-py's spelling
    ("SET", "k", memoryview(b"view")),
]


def _redis_py(*args: object) -> bytes:
    return b"".join(Connection().pack_command(*args))  # type: ignore[arg-type]


@pytest.mark.parametrize("args", ARGUMENTS, ids=lambda args: str(args[0]))
async def test_commands_are_sent_as_redis_py_would_send_them(settings: Settings, args: tuple[object, ...]) -> None:
    redis = create_redis(settings)
    try:
        connection = redis.connection_pool.make_connection()
        assert type(connection).__name__ == "HiredisConnection"
        assert b"".join(connection.pack_command(*args)) == _redis_py(*args)
    finally:
        await redis.aclose()


async def test_what_redis_py_refuses_is_still_refused(settings: Settings) -> None:
    redis = create_redis(settings)
    try:
        connection = redis.connection_pool.make_connection()
        with pytest.raises(DataError):
            connection.pack_command("SET", "k", True)
        with pytest.raises(UnicodeEncodeError):
            connection.pack_command("SET", "k", "\ud800")
    finally:
        await redis.aclose()


async def test_a_socket_url_keeps_its_connection_class(settings: Settings) -> None:
    redis = create_redis(
        settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": "unix:///tmp/r.sock"})})
    )
    try:
        assert issubclass(redis.connection_pool.connection_class, UnixDomainSocketConnection)
    finally:
        await redis.aclose()


async def test_scripts_and_replies_go_through(settings: Settings) -> None:
    redis = create_redis(settings)
    try:
        script = redis.register_script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
        assert await script(keys=["seat:naïve"], args=["✓", 41]) == ["seat:naïve", "✓", 42]
    finally:
        await redis.aclose()


async def test_a_pipeline_of_scripts_costs_one_round_trip_and_loads_a_script_redis_does_not_know(
    settings: Settings,
) -> None:
    redis = create_redis(settings)
    try:
        # A script this Redis has never seen (its text is new): the first EVALSHA fails with NOSCRIPT.
        unseen = redis.register_script(f"-- {uuid.uuid4()}\nreturn tonumber(ARGV[1]) * 2")
        failing = redis.register_script("return redis.error_reply('no')")
        await redis.script_load(failing.script)
        assert await redis.script_exists(unseen.sha) == [False]
        commands = await _commands_sent(
            redis,
            run_scripts(redis, [(unseen, [0, 1]), (failing, [0]), (unseen, [0, 3])], raise_on_error=False),
        )
        replies = commands.result
        assert (replies[0], str(replies[1]), replies[2]) == (2, "no", 6)
        # Both pipelines and the load; never SCRIPT EXISTS.
        assert commands.names == ["EVALSHA", "EVALSHA", "EVALSHA", "SCRIPT", "EVALSHA", "EVALSHA"]
        assert await redis.script_exists(unseen.sha) == [True]
        # Known now: one pipeline, one round trip, no question first.
        again = await _commands_sent(redis, run_scripts(redis, [(unseen, [0, 5]), (unseen, [0, 7])]))
        assert (again.result, again.names) == ([10, 14], ["EVALSHA", "EVALSHA"])
        with pytest.raises(ResponseError, match="no"):
            await run_scripts(redis, [(unseen, [0, 1]), (failing, [0])])
    finally:
        await redis.aclose()


@dataclass
class _Sent:
    result: Any
    names: list[str]


async def _commands_sent(redis: Redis, call: Awaitable[Any]) -> _Sent:
    """What `call` returns, and the names of the commands the client sent for it, in order (a pipeline
    packs each of its commands with `pack_command` too)."""
    names: list[str] = []
    connection_class = redis.connection_pool.connection_class
    original = connection_class.pack_command

    def recording(self: Any, *args: Any) -> Any:
        names.append(str(args[0]).split()[0])
        return original(self, *args)

    connection_class.pack_command = recording  # type: ignore[method-assign]
    try:
        return _Sent(await call, names)
    finally:
        connection_class.pack_command = original  # type: ignore[method-assign]
