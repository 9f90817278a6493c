"""The shared Redis client: commands packed by hiredis, byte for byte what redis-py would send."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backplane.core.config import RedisSettings, Settings
from backplane.core.redis import ScriptBatcher, create_redis, run_scripts
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.proxy import TcpProxy

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


async def test_a_batch_on_a_client_without_read_timeouts_is_bounded_as_a_whole(
    settings: Settings, redis_proxy: TcpProxy
) -> None:
    """The seat routes' batches go through a client whose reads have no time-out each (one timer a
    batch, not one a reply): a Redis that stops answering still fails the whole batch in time, with
    redis-py's TimeoutError for every call in it, and its late replies never answer a later batch."""
    url = f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_URL.rsplit('/', 1)[-1]}"
    proxied = settings.model_copy(update={"redis": RedisSettings(url=url, timeout_seconds=0.5)})
    redis = create_redis(proxied, timed_reads=False)
    assert redis.connection_pool.connection_kwargs["socket_timeout"] is None
    batch = ScriptBatcher(redis, timeout=0.5)
    echo = redis.register_script("return ARGV[1]")
    try:
        assert await batch(echo, ["k"], ["first"]) == "first"  # loaded, and the connection is open
        redis_proxy.hold()
        held = await asyncio.wait_for(
            asyncio.gather(batch(echo, ["k"], ["late 1"]), batch(echo, ["k"], ["late 2"]), return_exceptions=True),
            timeout=10,  # a guard: without the batch's own time-out this would hang until here
        )
        assert [type(reply) for reply in held] == [RedisTimeoutError, RedisTimeoutError]
        redis_proxy.flow()  # the held replies ("late 1", "late 2") are sent now, to a connection dropped
        assert await asyncio.gather(batch(echo, ["k"], ["a"]), batch(echo, ["k"], ["b"])) == ["a", "b"]
    finally:
        redis_proxy.flow()
        await redis.aclose()


async def test_calls_made_while_two_batches_are_in_flight_wait_and_go_as_one(
    settings: Settings, redis_proxy: TcpProxy
) -> None:
    """Group commit for scripts: with two batches unanswered, later calls gather into one batch that is
    sent once either is answered, so under load each round trip carries many calls (Redis and the API
    then spend less per call), while a lone call still goes at once."""
    url = f"redis://127.0.0.1:{redis_proxy.port}/{TEST_REDIS_URL.rsplit('/', 1)[-1]}"
    redis = create_redis(settings.model_copy(update={"redis": RedisSettings(url=url, timeout_seconds=5)}))
    batch = ScriptBatcher(redis)
    echo = redis.register_script("return ARGV[1]")
    await redis.script_load(echo.script)
    pool = redis.connection_pool
    opened = [await pool.get_connection(), await pool.get_connection()]  # connected (and SELECTed) before the hold
    for connection in opened:
        await pool.release(connection)
    sent: list[int] = []
    connection_class = redis.connection_pool.connection_class
    original = connection_class.pack_commands

    def recording(self: Any, commands: Any) -> Any:
        commands = list(commands)
        sent.append(len(commands))
        return original(self, commands)

    connection_class.pack_commands = recording  # type: ignore[method-assign]
    calls: list[asyncio.Future[Any]] = []
    try:
        redis_proxy.hold()
        for word in ("one", "two", "three", "four", "five"):  # each in a turn of the event loop of its own
            calls.append(asyncio.ensure_future(batch(echo, [], [word])))
            await asyncio.sleep(0.05)
        assert sent == [1, 1]
        redis_proxy.flow()
        assert await asyncio.gather(*calls) == ["one", "two", "three", "four", "five"]
        assert sent == [1, 1, 3]
        assert await batch(echo, [], ["alone"]) == "alone"
        assert sent == [1, 1, 3, 1]
    finally:
        connection_class.pack_commands = original  # type: ignore[method-assign]
        redis_proxy.flow()
        await asyncio.gather(*calls, return_exceptions=True)
        await redis.aclose()


async def test_a_batch_loads_a_script_redis_does_not_know_within_its_time(settings: Settings) -> None:
    redis = create_redis(settings, timed_reads=False)
    batch = ScriptBatcher(redis, timeout=settings.redis.timeout_seconds)
    unseen = redis.register_script(f"-- {uuid.uuid4()}\nreturn tonumber(ARGV[1]) * 2")
    failing = redis.register_script("return redis.error_reply('no')")
    try:
        replies = await asyncio.gather(
            batch(unseen, [], [1]), batch(failing, [], []), batch(unseen, [], [3]), return_exceptions=True
        )
        assert (replies[0], type(replies[1]), str(replies[1]), replies[2]) == (2, ResponseError, "no", 6)
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
