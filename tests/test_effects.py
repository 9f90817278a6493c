"""A unit of work's effects after its commit: in the order asked for, publishes batched into one round
trip, a failure logged without stopping the rest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.jobs import Job
from arq.utils import to_unix_ms
from arq.worker import Worker, func
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from sqlalchemy.ext.asyncio import AsyncEngine

from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.core.effects import effects
from backplane.core.queue import Message, Publish, create_queue, send
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


async def test_enqueues_and_publishes_go_in_one_round_trip_and_arq_runs_the_jobs(
    stores: Stores, settings: Settings
) -> None:
    """arq's own enqueue is three round trips a job (WATCH, EXISTS, MULTI..EXEC); a unit of work's
    messages and the publish after them now go in one, as jobs arq's worker runs as its own."""
    queue = create_queue(settings.redis.url)
    ran: list[tuple[Any, ...]] = []

    async def record(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        ran.append((*args, kwargs))

    try:
        counted = Counted(queue)
        await queue.ping()
        sends_before = counted.sends
        async with unit_of_work(create_sessionmaker(stores.engine, redis=stores.redis, queue=queue)) as session:
            effects(session).enqueue("record", 1, "one", _job_id="job-one", _queue_name="test:queue")
            effects(session).enqueue("record", 2, extra="two", _queue_name="test:queue")
            effects(session).publish(stores.channel, "queued")
        assert counted.sends - sends_before == 1
        assert await stores.heard(1) == ["queued"]
        assert (await queue.zscore("test:queue", "job-one")) is not None
        async with unit_of_work(create_sessionmaker(stores.engine, redis=stores.redis, queue=queue)) as session:
            effects(session).enqueue("record", 3, _job_id="job-one", _queue_name="test:queue")  # queued already
        assert await queue.zcard("test:queue") == 2
        due = datetime.now(UTC) + timedelta(minutes=5)
        async with unit_of_work(create_sessionmaker(stores.engine, redis=stores.redis, queue=queue)) as session:
            effects(session).enqueue("record", 4, _job_id="later", _defer_until=due, _queue_name="test:later")
        assert await queue.zscore("test:later", "later") == to_unix_ms(due)  # due then, in arq's milliseconds
        assert (await Job("later", queue, _queue_name="test:later").info()).kwargs == {}  # type: ignore[union-attr]
        worker = Worker(
            functions=[func(record, name="record")],  # type: ignore[list-item]
            redis_pool=queue,
            queue_name="test:queue",
            burst=True,
            poll_delay=0,
            handle_signals=False,
        )
        await worker.main()
        await worker.close()
    finally:
        await queue.aclose()
    assert sorted(ran, key=lambda call: call[0]) == [(1, "one", {}), (2, {"extra": "two"})]


async def test_a_job_sent_through_a_client_that_is_not_arqs_is_refused_before_anything_is_sent(
    stores: Stores,
) -> None:
    """Queuing needs arq's client (its serializer, default queue and expiry); publishes alone do not."""
    with pytest.raises(TypeError, match="arq client"):
        await send(stores.redis, [Publish(stores.channel, "not sent"), Message.of("record", 1)])
    assert await send(stores.redis, [Publish(stores.channel, "sent")]) == []
    assert await stores.heard(1) == ["sent"]
