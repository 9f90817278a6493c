"""Group commit: what concurrent callers ask for at the same moment, done together in batches.

Under load many requests of one process write a row (`db.RowBatcher`) or run a script
(`redis.ScriptBatcher`) at the same moment; done one by one, each pays a round trip of its own. A
`Batcher` collects the items asked for during one turn of the event loop and hands them to `_run` as
one batch; while `MAX_IN_FLIGHT` batches are unanswered, further items wait and go together once
either ends, so under load each round trip carries many items. `MAX_BATCH` caps a batch, so that a
wave of items arriving together goes as several batches at once rather than one that everything
waits on. Each caller awaits its own outcome, which `_run` settles. A lone item costs one loop turn
more. Hand-written: neither SQLAlchemy nor redis-py batches across callers.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Pending = tuple[Item, "asyncio.Future[Any]"]


class Batcher(ABC, Generic[Item]):
    MAX_IN_FLIGHT = 2  # batches unanswered at once; items arriving meanwhile wait and go in one batch
    MAX_BATCH: int | None = None  # items a batch takes at most (None: all that are waiting)

    def __init__(self) -> None:
        self._pending: list[tuple[Item, asyncio.Future[Any]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()  # strong references while running

    async def _submit(self, item: Item) -> Any:
        """`item` in the next batch; what `_run` settles its future with."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        return await future

    @abstractmethod
    async def _run(self, batch: list[tuple[Item, asyncio.Future[Any]]]) -> None:
        """Do the batch and settle each of its futures (`settle` for a failure of the whole batch)."""

    def _flush(self) -> None:
        """The waiting items as batches of at most MAX_BATCH, while fewer than MAX_IN_FLIGHT are
        unanswered; what is left goes when a batch in flight ends (`_ended`)."""
        while self._pending and len(self._in_flight) < self.MAX_IN_FLIGHT:
            cut = len(self._pending) if self.MAX_BATCH is None else self.MAX_BATCH
            batch, self._pending = self._pending[:cut], self._pending[cut:]
            task = asyncio.ensure_future(self._run(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._flush()


def settle(futures: Sequence[asyncio.Future[Any]], error: BaseException | None, result: Any = None) -> None:
    """Each future still waiting gets `result`, or `error` (cancelled for a cancellation); a future
    already done (its caller was cancelled meanwhile) is left alone."""
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        elif isinstance(error, Exception):
            future.set_exception(error)
        else:
            future.cancel()
