"""What a unit of work does once its transaction has committed: the one way to cause side effects.

Domain code never enqueues a task, publishes a message or calls out while its transaction is open:
it asks the unit of work's `Effects` (`effects(session)`), and `unit_of_work` runs them after the
commit, in the order asked, or drops them on a rollback. So a worker never sees work whose rows a
rolled-back transaction never wrote, and a subscriber never hears of a change it cannot read yet.

    effects(session).enqueue(SEND_EMAIL, address, subject, body)    # an arq task (task names live
                                                                    # next to their tasks)
    effects(session).publish(channel, message)                      # Redis pub/sub
    effects(session).call(forget_cached_plan)                       # anything else, awaited

The change is committed by the time an effect runs, so an effect that fails is logged and never
turns the request into an error; whatever needs it anyway has a sweeper (queued jobs, events,
deliveries) or expires (caches).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backplane.core.queue import Message, Publish, send

logger = logging.getLogger(__name__)

Effect = Callable[[], Awaitable[Any]]
_EFFECTS = "effects"


class Effects:
    def __init__(self, redis: Redis | None, queue: ArqRedis | None) -> None:
        self.redis = redis
        self.queue = queue
        self._pending: list[tuple[str, Effect | Message | Publish]] = []

    def enqueue(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Enqueue the arq task `task` (arq's own `_queue_name`, `_job_id`, `_defer_by` pass through)."""
        self._pending.append((f"enqueue {task}", Message.of(task, *args, **kwargs)))

    def publish(self, channel: str, message: str) -> None:
        self._pending.append((f"publish on {channel}", Publish(channel, message)))

    def call(self, effect: Effect, name: str | None = None) -> None:
        self._pending.append((name or str(getattr(effect, "__qualname__", effect)), effect))

    async def run(self) -> None:
        """Run every effect asked for, in order, each once; a failure is logged and the rest still run.
        Enqueues and publishes asked for one after another go in one round trip (a batch of 100 jobs
        makes one: `queue.send`)."""
        pending, self._pending = self._pending, []
        batch: list[tuple[str, Message | Publish]] = []
        for name, effect in pending:
            if isinstance(effect, Message | Publish):
                batch.append((name, effect))
                continue
            await self._send(batch)
            batch = []
            try:
                await effect()
            except Exception:  # committed: losing a side effect must not turn the change into a 5xx
                logger.exception("after commit: %s failed", name)
        await self._send(batch)

    async def _send(self, batch: list[tuple[str, Message | Publish]]) -> None:
        if not batch:
            return
        items = [item for _, item in batch]
        # The arq client when there are jobs to queue; publishes alone go through the unit's Redis.
        client = self.queue if any(isinstance(item, Message) for item in items) else self.redis
        try:
            if client is None:
                raise RuntimeError("this unit of work has no Redis or no task queue")
            await send(client, items)
        except Exception:
            logger.exception("after commit: %s failed", ", ".join(sorted({name for name, _ in batch})))

    def discard(self) -> None:
        self._pending.clear()


def effects(session: AsyncSession | Session) -> Effects:
    """The effects of `session`'s unit of work (created on first use, with the session's Redis and queue).
    Works from ORM flush hooks too: a sync `Session` shares its `info` with its `AsyncSession`."""
    found: Effects | None = session.info.get(_EFFECTS)
    if found is None:
        found = session.info[_EFFECTS] = Effects(session.info.get("redis"), session.info.get("queue"))
    return found


def take(session: AsyncSession) -> Effects | None:
    """The unit of work's effects, removed from the session (for `unit_of_work`, after its commit)."""
    found: Effects | None = session.info.pop(_EFFECTS, None)
    return found
