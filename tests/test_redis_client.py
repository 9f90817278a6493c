"""The shared Redis client: commands packed by hiredis, byte for byte what redis-py would send."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from backplane.core.config import Settings
from backplane.core.redis import create_redis

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
