"""Keeping `backplane worker` alive while Redis or PostgreSQL is away.

arq's `Worker.main` ends on the first Redis error of a poll (`_poll_iteration` raises through it),
and its connection retries cover only the start. `ResilientWorker` catches that error, waits with a
capped backoff and polls again, keeping its running jobs and what its startup built. `Stores` knows
whether each store answers, as this process last saw it: one log line when a store is lost, one
when it is back, and the state the health endpoint and the heartbeat key report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from arq.connections import create_pool
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from backplane.core import metrics

logger = logging.getLogger(__name__)

# What redis-py raises when Redis is unreachable. Python's own ConnectionError and TimeoutError are
# left out of `Stores.noticed`: an SMTP server or an agent's deadline raises them too.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Around arq's poll, which talks to nothing but Redis.
REDIS_DOWN: tuple[type[Exception], ...] = (*REDIS_ERRORS, ConnectionError, TimeoutError)
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
NAMES = {"redis": "Redis", "database": "PostgreSQL"}


def redis_down(error: BaseException) -> bool:
    """Whether `error` says Redis is unreachable: one of REDIS_DOWN, or the WatchError redis-py raises
    in its place when the connection of a pipeline that WATCHes a key is lost (arq watches each job
    it starts), raised while handling the connection error (its context)."""
    if isinstance(error, redis.exceptions.WatchError):
        return isinstance(error.__cause__ or error.__context__, REDIS_DOWN)
    return isinstance(error, REDIS_DOWN)


class Backoff:
    """Capped exponential waits: 0.25 s, 0.5 s, 1 s, ... up to `cap`."""

    def __init__(self, cap: float, first: float = 0.25) -> None:
        self.cap = cap
        self.first = min(first, cap)
        self._next = self.first

    def next(self) -> float:
        wait = self._next
        self._next = min(self.cap, self._next * 2)
        return wait

    def reset(self) -> None:
        self._next = self.first


class Store:
    """Whether one backing store answers, as this process last saw it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down_since: float | None = None
        self.back_again = asyncio.Event()
        self.back_again.set()

    @property
    def up(self) -> bool:
        return self.down_since is None

    def lost(self, error: BaseException) -> None:
        if self.name == "redis":
            metrics.REDIS_ERRORS.inc()
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.back_again.clear()
            logger.warning(
                "%s unreachable (%s: %s); background work waits and retries with backoff",
                NAMES[self.name],
                type(error).__name__,
                str(error) or "no message",
            )

    def back(self) -> None:
        if self.down_since is not None:
            logger.warning("%s reachable again after %.1f s; background work resumes", NAMES[self.name], self.outage)
            self.down_since = None
            self.back_again.set()

    @property
    def outage(self) -> float:
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since


class Stores:
    """Redis and PostgreSQL as one worker process sees them."""

    def __init__(self) -> None:
        self.redis = Store("redis")
        self.database = Store("database")

    def noticed(self, error: BaseException) -> bool:
        """Record `error` if it says a store is unreachable; False for any other error."""
        if isinstance(error, DATABASE_DOWN):
            self.database.lost(error)
            return True
        if isinstance(error, REDIS_ERRORS) or (isinstance(error, redis.exceptions.WatchError) and redis_down(error)):
            self.redis.lost(error)
            return True
        return False

    def checks(self) -> dict[str, str]:
        return {store.name: "ok" if store.up else "unavailable" for store in (self.database, self.redis)}


def stores_of(ctx: dict[str, Any]) -> Stores:
    """The process's `Stores` (a fresh one for a worker built without it, e.g. in tests)."""
    stores: Stores | None = ctx.get("stores")
    if stores is None:
        stores = ctx["stores"] = Stores()
    return stores


# A job the poll read is this worker's to start: not marked in progress (by another worker), still in
# the queue and due; then marked, for as long as arq's in-progress time-out. arq's own check and mark,
# as one script. KEYS: in-progress key, queue; ARGV: job id, now ms, in-progress ms -> its score | nil
_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (not score) or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
return score
"""


class ResilientWorker(Worker):
    """An arq Worker whose poll loop survives Redis going away, and which starts while Redis is down."""

    def __init__(self, *args: Any, stores: Stores, backoff_cap: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stores = stores
        self.ctx["stores"] = stores
        self.ctx["wake_poll"] = self.wake_poll
        self._backoff = Backoff(backoff_cap)
        self._woken = asyncio.Event()
        self._start: AsyncScript | None = None  # `_START`, registered with the pool once it is made

    def wake_poll(self) -> None:
        """Poll the queue now rather than after the poll delay (work was just queued). A full worker
        ignores it: it polls as its jobs end, and every extra poll re-reads the jobs others are running."""
        if self.job_counter < self.max_jobs:
            self._woken.set()

    async def _ping(self) -> None:
        """Redis answers? Asked with a client closed afterwards: arq's `create_pool` does not close the
        client it made when its own ping fails."""
        settings = self.redis_settings
        assert settings is not None and isinstance(settings.host, str)
        client = Redis(
            host=settings.host,
            port=settings.port,
            db=settings.database,
            username=settings.username,
            password=settings.password,
            ssl=settings.ssl,
            unix_socket_path=settings.unix_socket_path,
            socket_connect_timeout=settings.conn_timeout,
        )
        try:
            await client.ping()
        finally:
            await client.aclose()

    async def main(self) -> None:
        while self._pool is None:
            try:
                await self._ping()
                self._pool = await create_pool(
                    self.redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as error:
                self.stores.redis.lost(error)
                await asyncio.sleep(self._backoff.next())
        if self.burst:
            await super().main()
            return
        # arq's `Worker.main`, with a poll delay that `wake_poll` cuts short.
        logger.info("Starting worker for %d functions: %s", len(self.functions), ", ".join(self.functions))
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        while True:
            self._woken.clear()
            await self._poll_iteration()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_delay_s):
                    await self._woken.wait()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as error:
            if not redis_down(error):
                raise
            self.stores.redis.lost(error)
            await asyncio.sleep(self._backoff.next())
            return
        # Not `stores.redis.back()`: an iteration may touch no Redis at all (a full worker reads no
        # queue); the monitor's probe says when Redis is back.
        self._backoff.reset()

    async def _not_running(self, job_ids: list[bytes]) -> list[bytes]:
        """The ids that neither this worker runs nor another has marked in progress."""
        mine = {job_id for job_id, task in self.tasks.items() if not task.done()}
        found = [job_id for job_id in job_ids if job_id.decode() not in mine]
        if len(found) <= 1 or self.job_counter >= self.max_jobs:
            return found
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in found:
                pipe.exists(in_progress_key_prefix + job_id.decode())
            running = await pipe.execute()
        return [job_id for job_id, elsewhere in zip(found, running, strict=True) if not elsewhere]

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's `start_jobs`, each job checked and marked as started in one round trip (`_START`).

        arq checks each id its poll read with a WATCH, EXISTS, ZSCORE and UNWATCH, then marks it in
        MULTI..EXEC: four round trips a job, although a job stays in the queue while it runs, so a busy
        worker's poll paid them for every job it runs itself and every job other workers run. Those
        are left out first, the others' in one round trip; the script then checks and marks each job
        atomically. The slot (semaphore and counter) is given back whenever the job does not start,
        a Redis error included: arq's own kept it when its pipeline failed, and a few outages left the
        worker unable to run anything."""
        job_ids = await self._not_running(job_ids)
        for job_id_b in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            job_id = job_id_b.decode()
            self._start = self._start or self.pool.register_script(_START)
            try:
                score = await self._start(
                    keys=[in_progress_key_prefix + job_id, self.queue_name],
                    args=[job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000)],
                )
            except redis.exceptions.ResponseError:  # refused by Redis (out of memory, say): as arq, not started
                logger.warning("job %s could not be started", job_id, exc_info=True)
                score = None
            except BaseException:
                self.job_counter -= 1
                self.sem.release()
                raise
            if score is None:  # running elsewhere, done and gone from the queue, deferred again, or refused
                self.job_counter -= 1
                self.sem.release()
                continue
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
