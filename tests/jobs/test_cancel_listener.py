"""The cancel listener's subscription stays quiet while idle (no time-out, no reconnect)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from backplane.jobs.runner import _messages
from tests.conftest import TEST_REDIS_URL


async def test_an_idle_subscription_outlives_the_socket_timeout_and_still_gets_messages() -> None:
    listener = Redis.from_url(TEST_REDIS_URL, socket_timeout=0.3)  # far shorter than the quiet below
    publisher = Redis.from_url(TEST_REDIS_URL)
    try:
        async with listener.pubsub() as pubsub:
            await pubsub.subscribe("test:idle-channel")

            async def publish_later() -> None:
                await asyncio.sleep(2.5)
                await publisher.publish("test:idle-channel", "job_late")

            sender = asyncio.create_task(publish_later())
            received = await asyncio.wait_for(anext(_messages(pubsub)), timeout=30)
            await sender
        assert received == (b"test:idle-channel", b"job_late")
    finally:
        await listener.aclose()
        await publisher.aclose()
