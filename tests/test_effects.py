"""A unit of work's effects after its commit: in the order asked for, publishes batched into one round
trip, a failure logged without stopping the rest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from sqlalchemy.ext.asyncio import AsyncEngine

from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.core.effects import effects
from backplane.core.redis import create_redis


class Counted:
    """Round trips of a Redis client: each `send_packed_command` is one (a pipeline sends once)."""

    def __init__(self, redis: Redis) -> None:
        self.sends = 0
        connection_class = redis.connection_pool.connection_class
        counter = self

        class Counting(connection_class):  # type: ignore[misc, valid-type]
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.sends += 1
                await super().send_packed_command(command, check_health)

        redis.connection_pool.connection_class = Counting


@dataclass
class Stores:
    redis: Redis
    listener: Redis  # another client, subscribed to `channel`
    pubsub: PubSub
    engine: AsyncEngine
    channel: str

    async def heard(self, count: int) -> list[str]:
        found: list[str] = []
        while len(found) < count:
            message = await self.pubsub.get_message(timeout=2)
            assert message is not None, found
            found.append(message["data"])
        return found


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[Stores]:
    redis, listener, engine = create_redis(settings), create_redis(settings), create_engine(settings)
    pubsub = listener.pubsub()
    channel = f"test:effects:{uuid.uuid4().hex}"
    try:
        await pubsub.subscribe(channel)
        assert (await pubsub.get_message(timeout=1))["type"] == "subscribe"
        yield Stores(redis, listener, pubsub, engine, channel)
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await redis.aclose()
        await engine.dispose()


async def test_publishes_go_in_one_round_trip_in_order_around_other_effects(stores: Stores) -> None:
    counted = Counted(stores.redis)
    await stores.redis.ping()  # the connection made before counting starts
    sends_before = counted.sends
    channel = stores.channel

    async def between() -> None:
        await stores.listener.publish(channel, "between")  # another client: its place in the order shows

    async with unit_of_work(create_sessionmaker(stores.engine, redis=stores.redis)) as session:
        for n in range(50):
            effects(session).publish(channel, f"a{n}")
        effects(session).call(between, "between")
        effects(session).publish(channel, "b")
        assert counted.sends == sends_before  # nothing before the commit
    assert await stores.heard(52) == [*(f"a{n}" for n in range(50)), "between", "b"]
    assert counted.sends - sends_before == 2  # the 50, then the one after the call


async def test_a_failing_effect_is_logged_and_the_publishes_after_it_still_go(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError("the effect broke")

    with caplog.at_level(logging.ERROR, logger="backplane.core.effects"):
        async with unit_of_work(create_sessionmaker(stores.engine, redis=stores.redis)) as session:
            effects(session).call(broken, "a broken effect")
            effects(session).publish(stores.channel, "after")
    assert await stores.heard(1) == ["after"]
    assert [r.getMessage() for r in caplog.records] == ["after commit: a broken effect failed"]
