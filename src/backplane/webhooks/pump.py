"""The worker's first attempts of new deliveries, in batches: claimed together, sent together,
logged together.

A dispatch claims the new deliveries whose endpoint has a slot free at once itself, in its own
transaction (`first_attempts`, `FirstAttempts`), and the pump posts them once it commits. The rest
it hands to the pump after the commit. The pump takes one of its endpoint's slots for each
(`slots.py`, across every worker; a delivery whose endpoint is full waits in Redis as it does for a
job, and the attempt that frees a slot wakes it), claims what got a slot in one transaction, posts
them concurrently, and logs what came back in one transaction per batch of answers (those that come
within a few milliseconds of each other). Each endpoint has an HTTP client of its own, kept while
it is used: its connections are reused from one attempt to the next, and a hanging endpoint's
connections never sit in the pool every other request searches. A hanging endpoint therefore holds
its own slots and nothing else; the pump itself runs at most CAPACITY attempts at once.

Nothing here is needed for correctness: a delivery the pump never got to (the worker died, PostgreSQL
failed the claim) is pending in PostgreSQL, known to Redis neither as a job nor as waiting, and the
sweep queues a job for it once it is overdue. Claims keep two attempts of one delivery apart as
they do for jobs. The pump takes new deliveries only while its backlog is short (`room`), so that
a burst waits in the outbox, where any worker's dispatcher can take it, rather than in one
process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

import aiohttp
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.core.config import Settings
from backplane.core.crypto import Encryptor
from backplane.core.db import utcnow
from backplane.core.queue import Message
from backplane.core.queue import send as queue_jobs
from backplane.webhooks import delivery
from backplane.webhooks.sender import AttemptResult, new_client, send
from backplane.webhooks.slots import EndpointSlots, Outcome, Pair

logger = logging.getLogger(__name__)

CAPACITY = 200  # attempts in flight at once in one worker (each endpoint: its slots at most)
CLAIMS_AT_ONCE = 3  # claim transactions under way at once
CLIENT_IDLE_SECONDS = 120.0  # an endpoint's HTTP client is closed after this long unused (> an attempt)
BACKLOG = 400  # deliveries handed over but not yet given a slot, before `room` makes dispatch wait
ROOM_WAIT_SECONDS = 5.0
DISPATCH_WAIT_SECONDS = 5.0  # how long `stop` waits for dispatches that took slots to commit
# How long the log waits, after an answer, for the attempts still under way before it writes: at 100
# events a second to two endpoints, each event's two answers were logged in a transaction each.
LOG_GATHER_SECONDS = 0.005


class Pump:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: ArqRedis,
        settings: Settings,
        encryptor: Encryptor,
        slots: EndpointSlots,
        *,
        capacity: int = CAPACITY,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        self._clients: dict[str, tuple[aiohttp.ClientSession, float]] = {}  # endpoint id -> (client, last used)
        self._settings = settings
        self._encryptor = encryptor
        self._slots = slots
        self._capacity = capacity
        self._todo: deque[Pair] = deque()  # handed over, no slot yet
        self._ready: list[Pair] = []  # slot held, not claimed yet
        self._held = 0  # slots this pump holds (ready, being claimed, or being sent)
        self._sent: list[tuple[str, str, Outcome]] = []  # answered: their slots go back at the next turn of `_feed`
        self._answers: list[tuple[delivery.Claim, AttemptResult]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._claiming: set[asyncio.Task[None]] = set()
        self._work = asyncio.Event()
        self._answered = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = False
        self._stopped = False  # everything not started has been queued as jobs: nothing more is sent here
        self._dispatches = 0  # `first_attempts` blocks under way
        self._no_dispatch = asyncio.Event()
        self._no_dispatch.set()
        self._tasks: list[asyncio.Task[None]] = []

    # --- the dispatcher's side ----------------------------------------------------------------

    def submit(self, pairs: list[Pair]) -> None:
        """New deliveries, due now (called once the transaction that made them has committed)."""
        self._todo.extend(pairs)
        if len(self._todo) >= BACKLOG:
            self._room.clear()
        self._work.set()

    @contextlib.asynccontextmanager
    async def first_attempts(self) -> AsyncIterator[FirstAttempts]:
        """For one `dispatch`: the slots it takes for the deliveries it claims itself. Those it has not
        started once the block ends (its transaction failed) are given back."""
        first = FirstAttempts(self, self._encryptor)
        self._dispatches += 1
        self._no_dispatch.clear()
        try:
            yield first
        finally:
            first.give_back()
            self._dispatches -= 1
            if not self._dispatches:
                self._no_dispatch.set()

    async def room(self) -> bool:
        """Wait (a few seconds at most) until the backlog is short; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ROOM_WAIT_SECONDS):
                await self._room.wait()
        return self._room.is_set() and not self._stopping

    def idle(self) -> bool:
        """Whether everything handed over has been sent, logged and its slot given back."""
        return not (
            self._todo or self._ready or self._held or self._sent or self._answers or self._sending or self._claiming
        )

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._feed(), name="webhooks.pump.feed"),
            asyncio.create_task(self._log(), name="webhooks.pump.log"),
        ]

    async def stop(self) -> None:
        """Finish the attempts under way (within their deadline) and log them; what was not started
        yet becomes a `webhooks.deliver` job each, for whichever worker runs next. A dispatch that took
        slots first commits (`DISPATCH_WAIT_SECONDS` at most): its claims are then sent like the rest;
        without the wait they stayed leased and unsent until the sweep found them after the lease."""
        self._stopping = True
        self._room.set()
        self._work.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DISPATCH_WAIT_SECONDS):
                await self._no_dispatch.wait()
        if self._claiming:
            await asyncio.wait(list(self._claiming), timeout=5)
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=self._settings.webhook_timeout_seconds + 5)
        for task in [*self._tasks, *self._claiming, *self._sending]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._claiming, *self._sending, return_exceptions=True)
        with contextlib.suppress(Exception):  # a store away: the sweep finds these deliveries again
            await self._write()
        await self._close_idle_clients(idle_for=0)
        ready, todo = self._ready, list(self._todo)
        self._ready, self._todo = [], deque()
        self._stopped = True
        with contextlib.suppress(Exception):
            await self._slots.release_many([*_unused(ready), *self._sent])
            await self._queue_jobs([*ready, *todo])

    async def _queue_jobs(self, pairs: list[Pair]) -> None:
        """Each delivery as a `webhooks.deliver` job, in one round trip (a stopped pump's leftovers)."""
        messages = [
            Message.of(delivery.DELIVER_TASK, delivery_id, endpoint_id, _job_id=delivery.job_id(delivery_id, 1))
            for delivery_id, endpoint_id in pairs
        ]
        if messages:
            await queue_jobs(self._queue, messages)

    async def _feed(self) -> None:
        while not self._stopping:
            await self._work.wait()
            self._work.clear()
            try:
                sent, self._sent = self._sent, []
                await self._release(sent)
                await self._take_slots()
            except Exception:
                # Redis away: what was taken stays pending in PostgreSQL, and the sweep requeues it.
                logger.warning("webhook pump: slots could not be taken or given back", exc_info=True)
                await asyncio.sleep(1)
            if self._ready and len(self._claiming) < CLAIMS_AT_ONCE:
                # Claimed on the side: slots freed meanwhile are given back and taken again at once.
                ready, self._ready = self._ready, []
                claiming = asyncio.create_task(self._claim_and_send(ready))
                self._claiming.add(claiming)
                claiming.add_done_callback(self._claimed)
            if self._todo and self._held < self._capacity:
                self._work.set()  # some of the last ones found their endpoint full: take more

    async def _take_slots(self) -> None:
        wanted: list[Pair] = []
        while self._todo and self._held + len(wanted) < self._capacity:
            wanted.append(self._todo.popleft())
        if len(self._todo) < BACKLOG // 2:
            self._room.set()
        granted = await self._slots.acquire_many(wanted)
        self._ready.extend(granted)
        self._held += len(granted)

    def _client(self, endpoint_id: str) -> aiohttp.ClientSession:
        client = self._clients[endpoint_id][0] if endpoint_id in self._clients else new_client(self._settings)
        self._clients[endpoint_id] = (client, time.monotonic())
        return client

    async def _close_idle_clients(self, *, idle_for: float) -> None:
        """Close the clients of endpoints not sent to for `idle_for` seconds (longer than an attempt
        lasts, so none has a request under way)."""
        now = time.monotonic()
        for endpoint_id, (client, used) in list(self._clients.items()):
            if now - used >= idle_for:
                del self._clients[endpoint_id]
                await client.close()

    def _claimed(self, task: asyncio.Task[None]) -> None:
        self._claiming.discard(task)
        self._work.set()

    async def _claim_and_send(self, ready: list[Pair]) -> None:
        try:
            claims = await delivery.claim(
                self._sessionmaker, self._settings, self._encryptor, [d for d, _ in ready], utcnow()
            )
        except Exception:
            # PostgreSQL away: these stay pending, and the sweep requeues them.
            logger.warning("webhook pump: a batch could not be claimed; the sweep will find it", exc_info=True)
            with contextlib.suppress(Exception):  # if Redis is away too, the slots' leases end on their own
                await self._release(_unused(ready))
            await asyncio.sleep(1)
            return
        claimed = {c.delivery_id for c in claims}
        unclaimed = [pair for pair in ready if pair[0] not in claimed]
        self._launch(claims)
        if unclaimed:  # another worker's, or nothing due: their slots go back at once
            await self._release(_unused(unclaimed))

    async def _take_free(self, wanted: list[Pair]) -> list[Pair]:
        """Slots for those of `wanted` whose endpoint has one free now, within the pump's capacity; the
        others neither get one nor wait (`FirstAttempts`)."""
        if self._stopping:
            return []
        granted = await self._slots.acquire_many(wanted[: max(0, self._capacity - self._held)], wait=False)
        self._held += len(granted)
        return granted

    async def _start_first(self, claims: list[delivery.Claim], taken: set[Pair], rest: list[Pair]) -> None:
        """After a dispatch's commit (`FirstAttempts`): its claims sent, the other slots it took given back,
        `rest` handed over. Once the pump has stopped (`stop` gave up waiting for this commit, or the
        dispatch began after it) nothing is sent: no one would log the answer, and the sweep would make
        the attempt again once its lease ended. The claims are left to that sweep, every slot taken
        goes back now, and `rest` is queued as the stopped pump's own leftovers were."""
        if self._stopped:
            with contextlib.suppress(Exception):  # a store away: the slots' own leases free them
                await self._slots.release_many(_unused(list(taken)))
                await self._queue_jobs(rest)
            return
        self._launch(claims)
        self._give_back(list(taken - {(claim.delivery_id, claim.endpoint_id) for claim in claims}))
        if rest:
            self.submit(rest)

    def _give_back(self, unused: list[Pair]) -> None:
        """Slots held and not used go back at the next turn of `_feed`, as answered ones do."""
        if unused:
            self._sent.extend(_unused(unused))
            self._work.set()

    def _launch(self, claims: list[delivery.Claim]) -> None:
        for claim in claims:
            task = asyncio.create_task(self._send(claim))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, claim: delivery.Claim) -> None:
        result = await send(
            self._client(claim.endpoint_id), claim.url, claim.body, claim.headers, settings=self._settings, claim=claim
        )
        # The request is over: its slot goes back now, before the attempt is logged.
        self._sent.append((claim.delivery_id, claim.endpoint_id, "ok" if result.succeeded else "fail"))
        self._work.set()
        self._answers.append((claim, result))
        self._answered.set()

    async def _log(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLIENT_IDLE_SECONDS):
                    await self._answered.wait()
            self._answered.clear()
            if self._sending:
                # The other attempts under way (an event's other endpoints, sent at the same moment)
                # mostly answer within a few milliseconds: one transaction logs them all. Their slots
                # went back as each answered; only the log waits.
                await asyncio.wait(list(self._sending), timeout=LOG_GATHER_SECONDS)
            await self._close_idle_clients(idle_for=CLIENT_IDLE_SECONDS)
            try:
                await self._write()
            except Exception:
                # The attempts were made but not logged: their deliveries stay claimed until the lease
                # ends, then the sweep has them sent again (at least once, never lost).
                logger.warning("webhook pump: attempts could not be logged", exc_info=True)
                await asyncio.sleep(1)

    async def _write(self) -> None:
        answers, self._answers = self._answers, []
        if answers:
            await delivery.record_outcomes(self._sessionmaker, self._queue, self._settings, answers)

    async def _release(self, done: list[tuple[str, str, Outcome]]) -> None:
        """Give slots back; each delivery woken by it gets the slot straight away if it can, and is
        attempted here. An endpoint whose breaker this opened gets its probe queued."""
        if not done:
            return
        self._held -= len(done)
        released = await self._slots.release_many(done)
        if released.opened:
            await delivery.queue_probes(self._queue, released.opened)
        granted = await self._slots.acquire_many(released.woken)
        self._ready.extend(granted)
        self._held += len(granted)
        self._work.set()


def _unused(pairs: list[Pair]) -> list[tuple[str, str, Outcome]]:
    """Slots given back without an attempt made."""
    return [(delivery_id, endpoint_id, "-") for delivery_id, endpoint_id in pairs]


class FirstAttempts:
    """The slots one `dispatch` takes for the first attempts it claims itself (`delivery.FirstAttempts`).

    A slot is taken only where one is free at once (no waiting set: the delivery does not exist for
    any other worker until the dispatch commits, so nothing may wake it before); the pump's capacity
    counts them as it counts its own. After the commit the claims are sent, and the rest is handed
    over as usual; if the transaction fails, the slots go back unused (`Pump.first_attempts`)."""

    def __init__(self, pump: Pump, encryptor: Encryptor) -> None:
        self._pump = pump
        self.encryptor = encryptor
        self._taken: set[Pair] = set()

    async def take(self, wanted: list[Pair]) -> list[Pair]:
        granted = await self._pump._take_free(wanted)
        self._taken.update(granted)
        return granted

    async def start(self, claims: list[delivery.Claim], rest: list[Pair]) -> None:
        taken, self._taken = self._taken, set()
        await self._pump._start_first(claims, taken, rest)

    def give_back(self) -> None:
        """The slots taken and not started go back at the pump's next turn, as answered ones do."""
        unused, self._taken = list(self._taken), set()
        self._pump._give_back(unused)
