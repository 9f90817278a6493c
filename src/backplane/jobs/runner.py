"""Running agent jobs on arq workers: `jobs.run`, heartbeats, cancellation, and the sweeper.

A run claims its job (QUEUED with the run's dispatch token -> PROCESSING, one attempt counted in
PostgreSQL), runs the agent under its time limit while heartbeating, and writes the outcome in one
transaction fenced by the token. The sweeper, one per worker process (serialised through a Redis
lock), finds what a dead worker left behind (a PROCESSING job whose heartbeat stopped, a dispatched
job whose arq message never ran) and dispatches waiting jobs whose backoff has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backplane.agents import llm
from backplane.agents.base import Agent, AgentContext, AgentFile, AgentInputError, LLMCall
from backplane.agents.registry import get_agent
from backplane.billing.repository import SubscriptionRepository
from backplane.core.config import Settings
from backplane.core.db import unit_of_work, utcnow
from backplane.core.logs import bind_log_context, log_context
from backplane.core.queue import DEFAULT_QUEUE, enqueue_after_commit
from backplane.files.models import File
from backplane.files.repository import FileRepository
from backplane.files.storage import Storage
from backplane.files.types import BY_CONTENT_TYPE
from backplane.jobs import lifecycle
from backplane.jobs.models import Job, JobStatus
from backplane.workers.resilience import Stores

logger = logging.getLogger(__name__)

USAGE_EVENT = "jobs_completed"  # the Stripe meter a completed live-mode job reports to


MAX_OUTPUT_BYTES = 8 * 1024 * 1024  # an output is stored in a row and copied into its event


def storable(value: Any) -> Any:
    """`value` as PostgreSQL's jsonb takes it: no NUL in strings, no NaN or infinities (null instead)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


class _Lost(Exception):
    """The run no longer owns its job (cancelled, or taken over after a missed heartbeat)."""


async def _claim(session: AsyncSession, job_id: str, token: uuid.UUID) -> Job | None:
    stmt = (
        select(Job)
        .where(Job.id == job_id, Job.dispatch_token == token, Job.status == JobStatus.QUEUED)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _owned(session: AsyncSession, job_id: str, token: uuid.UUID) -> Job | None:
    stmt = (
        select(Job)
        .where(Job.id == job_id, Job.dispatch_token == token, Job.status == JobStatus.PROCESSING)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _files(session: AsyncSession, job: Job) -> list[AgentFile]:
    if not job.file_ids:
        return []
    stmt = (
        FileRepository(session, job.organization_id, job.livemode)
        .select()
        .where(File.id.in_(job.file_ids), File.status == "ready")
    )
    found = {f.id: f for f in (await session.execute(stmt)).scalars()}
    missing = [f for f in job.file_ids if f not in found]
    if missing:
        raise AgentInputError(f"These files were deleted before the job ran: {', '.join(missing)}.")
    return [
        AgentFile(
            id=f.id,
            filename=f.filename,
            content_type=f.content_type,
            type_name=(kind.name if (kind := BY_CONTENT_TYPE.get(f.content_type)) else ""),
            size_bytes=f.size_bytes,
            storage_key=f.storage_key,
        )
        for f in (found[i] for i in job.file_ids)
    ]


def _reader(storage: Storage) -> Any:
    async def read_file(file: AgentFile) -> bytes:
        chunks = [chunk async for chunk in storage.read(file.storage_key)]
        return b"".join(chunks)

    return read_file


class Runner:
    """Per-process state of the jobs worker: its resources, running jobs, sweeper and cancel listener."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        queue: ArqRedis,
        storage: Storage,
        http: httpx.AsyncClient,
        stores: Stores | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.queue = queue
        self.storage = storage
        self.http = http
        self.stores = stores or Stores()  # an unreachable store is logged once there, not on every beat
        self.running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.cancelled: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._releasing: set[asyncio.Future[None]] = set()
        self.llm: LLMCall | None = llm.chat_completions(settings, http)  # None without LLM_BASE_URL

    # -- one run ------------------------------------------------------------------------------

    async def run(self, job_id: str, token_text: str) -> str:
        try:
            token = uuid.UUID(token_text)
        except ValueError:
            return "skipped: malformed token"
        async with unit_of_work(self.sessionmaker) as session:
            job = await _claim(session, job_id, token)
            if job is None:
                return "skipped: not queued with this token"
            bind_log_context(organization_id=job.organization_id)
            now = utcnow()
            job.attempts += 1
            job.started_at = now
            job.heartbeat_at = now
            lifecycle.transition(session, job, JobStatus.PROCESSING, now, reason=f"attempt {job.attempts}")
            attempt, agent_id = job.attempts, job.agent_id
            input_data, config = dict(job.input_data), dict(job.config)
            try:
                files = await _files(session, job)
                problem = None
            except AgentInputError as exc:
                files, problem = [], exc

        agent = get_agent(agent_id)
        if problem is None and agent is None:
            problem = AgentInputError(f"The agent {agent_id!r} is not available.")
        if problem is not None or agent is None:
            await self._fail(job_id, token, {"code": "INVALID_INPUT", "message": str(problem)}, retryable=False)
            return "failed"

        context = AgentContext(
            job_id=job_id,
            settings=self.settings,
            http=self.http,
            files=files,
            read_file=_reader(self.storage),
            llm=self.llm,
            extras={"attempt": attempt},
        )
        task = asyncio.create_task(self._run_agent(agent, context, input_data, config))
        self.running[job_id] = task
        try:
            output = await self._supervise(job_id, token, task)
        except asyncio.CancelledError:
            if job_id in self.cancelled:  # cancelled by the user or taken over: discard everything
                return "cancelled"
            # The worker is shutting down (deploy): hand the job back without using up an attempt.
            task.cancel()
            release = asyncio.ensure_future(self._release(job_id, token))
            self._releasing.add(release)  # `stop` waits for it even if this task is cancelled again
            release.add_done_callback(self._releasing.discard)
            await asyncio.shield(release)
            raise
        except AgentInputError as exc:
            await self._fail(job_id, token, {"code": "INVALID_INPUT", "message": str(exc)}, retryable=False)
            return "failed"
        except TimeoutError:
            # Final: another attempt would meet the same input under the same limit (and a hostile file
            # would cost three time limits instead of one). The agent's parser was killed with its task.
            message = f"The agent did not finish within its {agent.time_limit_seconds:g} s time limit."
            await self._fail(job_id, token, {"code": "TIMEOUT", "message": message}, retryable=False)
            return "failed"
        except _Lost:
            return "lost"
        except Exception as exc:
            logger.warning("job %s attempt %d failed", job_id, attempt, exc_info=True)
            message = f"{type(exc).__name__}: {exc}"[:1000]
            await self._fail(job_id, token, {"code": "AGENT_ERROR", "message": message}, retryable=True)
            return "failed"
        finally:
            if not task.done():  # whatever ended the supervision, the agent never runs on untracked
                task.cancel()
            self.running.pop(job_id, None)
            self.cancelled.discard(job_id)
        try:
            return await self._complete(job_id, token, output)
        except (DBAPIError, ValueError, TypeError) as exc:  # output PostgreSQL refused despite the cleaning
            logger.warning("job %s output could not be stored", job_id, exc_info=True)
            message = f"The agent's output could not be stored: {type(exc).__name__}."
            await self._fail(job_id, token, {"code": "OUTPUT_INVALID", "message": message}, retryable=False)
            return "failed"

    async def _run_agent(
        self, agent: Agent, context: AgentContext, input_data: dict[str, Any], config: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            parsed_input = agent.input_model.model_validate(input_data)
            parsed_config = agent.config_model.model_validate(config)
        except ValidationError as exc:  # the agent's schema changed since the job was created
            raise AgentInputError(f"The job's input no longer fits {agent.id}: {exc.errors()[0]['msg']}") from exc
        async with asyncio.timeout(agent.time_limit_seconds):
            output = await agent.run(context, parsed_input, parsed_config)
        if not isinstance(output, dict):
            raise TypeError(f"agent {agent.id} returned {type(output).__name__}, not an object")
        output = storable(output)
        if len(json.dumps(output)) > MAX_OUTPUT_BYTES:
            raise AgentInputError(f"The output is larger than {MAX_OUTPUT_BYTES // (1024 * 1024)} MB; send less input.")
        return output

    async def _supervise(self, job_id: str, token: uuid.UUID, task: asyncio.Task[dict[str, Any]]) -> dict[str, Any]:
        """Heartbeat while the agent runs; abort it at once when the job stops being ours.

        A heartbeat that fails (the database briefly unreachable) is retried on the next beat; once
        none has succeeded for the stall window, the sweeper may have handed the job to another
        worker, so this run stops rather than risk running twice at once.
        """
        last_beat = asyncio.get_running_loop().time()
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.settings.job_heartbeat_seconds)
            if done:
                return task.result()
            try:
                owned = await self._heartbeat(job_id, token)
                last_beat = asyncio.get_running_loop().time()
            except Exception as error:
                if not self.stores.noticed(error):
                    logger.warning("heartbeat of job %s failed", job_id, exc_info=True)
                owned = asyncio.get_running_loop().time() - last_beat < self.settings.job_stall_seconds
            if not owned:
                self.cancelled.add(job_id)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise _Lost

    async def _heartbeat(self, job_id: str, token: uuid.UUID) -> bool:
        async with unit_of_work(self.sessionmaker) as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.dispatch_token == token, Job.status == JobStatus.PROCESSING)
                .values(heartbeat_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _complete(self, job_id: str, token: uuid.UUID, output: dict[str, Any]) -> str:
        async with unit_of_work(self.sessionmaker) as session:
            job = await _owned(session, job_id, token)
            if job is None:
                return "lost"
            job.output_data = output
            job.error = None
            job.heartbeat_at = None
            lifecycle.transition(session, job, JobStatus.COMPLETED, utcnow())
            lifecycle.record_final_event(session, job, self.settings)
            lifecycle.announce_after_commit(session, self.redis, job)
            if job.livemode:
                await self._report_usage_after_commit(session, job)
            lifecycle.dispatch_after_commit(
                session, self.sessionmaker, self.redis, self.queue, self.settings, job.organization_id
            )
        return "completed"

    async def _report_usage_after_commit(self, session: AsyncSession, job: Job) -> None:
        if self.settings.stripe.local_mode:
            return  # no Stripe to report to (the task would only log that)
        subscription = await SubscriptionRepository(session).get_for_organization(job.organization_id)
        enqueue_after_commit(
            session,
            self.queue,
            "billing.report_usage",
            organization_id=str(job.organization_id),
            customer_id=subscription.stripe_customer_id if subscription else None,
            event_name=USAGE_EVENT,
            value=1,
            identifier=job.id,  # stable: Stripe bills a job once however often this runs
            livemode=True,
            _job_id=f"usage:{job.id}",
            _queue_name=DEFAULT_QUEUE,
        )

    async def _fail(self, job_id: str, token: uuid.UUID, error: dict[str, Any], *, retryable: bool) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            job = await _owned(session, job_id, token)
            if job is None:
                return
            lifecycle.fail_attempt(session, job, self.settings, utcnow(), error, retryable=retryable)
            if lifecycle.is_final(job):
                lifecycle.announce_after_commit(session, self.redis, job)
            lifecycle.dispatch_after_commit(
                session, self.sessionmaker, self.redis, self.queue, self.settings, job.organization_id
            )

    async def _release(self, job_id: str, token: uuid.UUID) -> None:
        """Give an interrupted run's job back to the queue; the interrupted attempt is not counted."""
        try:
            async with unit_of_work(self.sessionmaker) as session:
                job = await _owned(session, job_id, token)
                if job is None:
                    return
                job.attempts = max(0, job.attempts - 1)
                job.dispatch_token = None
                job.heartbeat_at = None
                lifecycle.transition(session, job, JobStatus.QUEUED, utcnow(), reason="worker shut down")
                lifecycle.dispatch_after_commit(
                    session, self.sessionmaker, self.redis, self.queue, self.settings, job.organization_id
                )
        except Exception:  # the sweeper finds it once its heartbeat is stale
            logger.exception("could not release job %s on shutdown", job_id)

    # -- background: cancel listener and sweeper --------------------------------------------

    def start(self) -> None:
        self._background = [
            asyncio.create_task(self._listen_for_cancels(), name="jobs-cancel-listener"),
            asyncio.create_task(self._sweep_forever(), name="jobs-sweeper"),
        ]

    async def stop(self) -> None:
        if self._releasing:
            await asyncio.wait(self._releasing, timeout=10)
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def abort(self, job_id: str) -> bool:
        task = self.running.get(job_id)
        if task is None or task.done():
            return False
        self.cancelled.add(job_id)
        task.cancel()
        return True

    async def _listen_for_cancels(self) -> None:
        """Abort a running job the moment its cancellation commits (the heartbeat would also notice)."""
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(lifecycle.CANCEL_CHANNEL)
                    async for message in _messages(pubsub):
                        job_id = message.decode() if isinstance(message, bytes) else str(message)
                        if self.abort(job_id):
                            logger.info("job %s cancelled while running: aborted", job_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self.stores.noticed(error):
                    logger.warning("cancel listener failed; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    async def _sweep_forever(self) -> None:
        interval = self.settings.job_sweep_interval_seconds
        while True:
            try:
                # One sweeper at a time across worker processes; the lock expires with the interval.
                if await self.redis.set("backplane:jobs:sweeper", "1", nx=True, px=max(1, int(interval * 1000))):
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self.stores.noticed(error):
                    logger.warning("job sweep failed; trying again", exc_info=True)
            await asyncio.sleep(interval)

    async def sweep(self) -> dict[str, int]:
        """Recover stalled and lost runs, then dispatch every organization with waiting, ready jobs."""
        now = utcnow()
        stalled = lost = 0
        async with unit_of_work(self.sessionmaker) as session:
            stale = now - timedelta(seconds=self.settings.job_stall_seconds)
            stmt = (
                select(Job)
                .where(Job.status == JobStatus.PROCESSING, Job.heartbeat_at < stale)
                .limit(500)
                .with_for_update(skip_locked=True)
            )
            for job in (await session.execute(stmt)).scalars():
                stalled += 1
                message = f"The worker running attempt {job.attempts} stopped responding."
                lifecycle.fail_attempt(
                    session, job, self.settings, now, {"code": "WORKER_LOST", "message": message}, retryable=True
                )
                if lifecycle.is_final(job):
                    lifecycle.announce_after_commit(session, self.redis, job)
            for job in await self._undelivered(session, now):
                lost += 1
                job.dispatch_token = None  # its message was lost: hand it out again
        ready = (
            select(Job.organization_id)
            .distinct()
            .where(
                Job.status == JobStatus.QUEUED,
                Job.dispatch_token.is_(None),
                or_(Job.run_after.is_(None), Job.run_after <= utcnow()),
            )
        )
        async with self.sessionmaker() as session:
            organizations = list((await session.execute(ready.limit(1000))).scalars())
        dispatched = 0
        for organization_id in organizations:
            dispatched += len(
                await lifecycle.dispatch(self.sessionmaker, self.redis, self.queue, self.settings, organization_id)
            )
        if stalled or lost or dispatched:
            logger.info("job sweep: %d stalled, %d undelivered, %d dispatched", stalled, lost, dispatched)
        return {"stalled": stalled, "lost": lost, "dispatched": dispatched}

    async def _undelivered(self, session: AsyncSession, now: datetime) -> list[Job]:
        """Handed-out jobs that will not start from their message: Redis lost it (looked for once the
        job has waited a third of RECOVERY_SECONDS), or a worker took it and died before starting the
        job (after JOB_DISPATCH_TIMEOUT_SECONDS). A message merely waiting in arq's queue keeps its place."""
        grace = min(self.settings.recovery_seconds / 3, self.settings.job_dispatch_timeout_seconds)
        stmt = (
            select(Job)
            .where(
                Job.status == JobStatus.QUEUED,
                Job.dispatch_token.is_not(None),
                Job.dispatched_at < now - timedelta(seconds=grace),
            )
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        jobs = list((await session.execute(stmt)).scalars())
        if not jobs:
            return []
        async with self.queue.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.exists(f"{job_key_prefix}{job.id}:{job.dispatch_token}")
                pipe.exists(f"{in_progress_key_prefix}{job.id}:{job.dispatch_token}")
            found = await pipe.execute()
        abandoned = now - timedelta(seconds=self.settings.job_dispatch_timeout_seconds)
        return [
            job
            for job, queued, taken in zip(jobs, found[::2], found[1::2], strict=True)
            if not queued or (taken and job.dispatched_at is not None and job.dispatched_at < abandoned)
        ]


# Shorter than any sensible REDIS_TIMEOUT_SECONDS: an idle subscription waits in these slices, so its
# read never hits the socket's timeout (which `listen()` turned into an error, and a reconnect, every
# few seconds of quiet).
_PUBSUB_WAIT_SECONDS = 1.0


async def _messages(pubsub: Any) -> AsyncIterator[Any]:
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_PUBSUB_WAIT_SECONDS)
        if message is not None and message.get("type") == "message":
            yield message["data"]


async def run_job_task(ctx: dict[str, Any], job_id: str, token: str) -> str:
    """`jobs.run`: one attempt of one job (on the agent-jobs queue)."""
    runner: Runner = ctx["runner"]
    with log_context(job_id=job_id):
        return await runner.run(job_id, token)
