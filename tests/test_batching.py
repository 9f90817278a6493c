"""Group commit (`core/batching.py`): how a burst of items is cut into batches."""

from __future__ import annotations

import asyncio
from typing import Any

from backplane.core.batching import Batcher, settle


class _Recorder(Batcher[int]):
    """Records each batch and holds it until released, as a slow statement would."""

    MAX_IN_FLIGHT = 3

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def submit(self, item: int) -> Any:
        return await self._submit(item)

    async def _run(self, batch: list[tuple[int, asyncio.Future[Any]]]) -> None:
        self.batches.append([item for item, _ in batch])
        await self.release.wait()
        settle([future for _, future in batch], None, "done")


async def _burst(batcher: _Recorder, items: int) -> list[Any]:
    pending = asyncio.gather(*(batcher.submit(n) for n in range(items)))
    for _ in range(5):
        await asyncio.sleep(0)
    started = list(batcher.batches)
    batcher.release.set()
    assert await pending == ["done"] * items
    return started


async def test_a_burst_goes_as_one_batch_when_batches_are_not_capped() -> None:
    batcher = _Recorder()
    assert await _burst(batcher, 10) == [list(range(10))]


async def test_a_burst_larger_than_a_batch_is_cut_and_its_parts_go_at_once() -> None:
    """A wave of requests arriving together (what a closed-loop client makes) is not one batch the
    whole process waits on: it goes as batches of at most MAX_BATCH, as many at once as MAX_IN_FLIGHT,
    and the rest once one of them ends."""
    batcher = _Recorder()
    batcher.MAX_BATCH = 4
    started = await _burst(batcher, 14)
    assert started == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert batcher.batches[3:] == [[12, 13]]
