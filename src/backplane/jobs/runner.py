"""Running agent jobs on arq workers: `jobs.run`, heartbeats, cancellation and wake-ups.

A run claims its job in one statement (QUEUED with the run's dispatch token -> PROCESSING, one
attempt counted in PostgreSQL, the transition recorded), runs the agent under its time limit while
heartbeating, and writes the outcome fenced by the token: a completion is one statement too, which
also records the `job.completed` event and hands the freed slot to the organization's next waiting
job. What a dead worker leaves behind is the sweeper's (`jobs/tasks.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any

import httpx
from pydantic import ValidationError
from redis.asyncio.client import Pipeline
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from backplane.agents import llm
from backplane.agents.base import Agent, AgentContext, AgentFile, AgentInputError, LLMCall
from backplane.agents.registry import get_agent
from backplane.billing.repository import SubscriptionRepository
from backplane.billing.service import cached_plan
from backplane.billing.usage import REPORT_USAGE
from backplane.core import keys, metrics, tracing
from backplane.core.config import Settings
from backplane.core.db import HeldConnection, create_engine, unit_of_work, utcnow
from backplane.core.effects import effects
from backplane.core.logs import bind_log_context, log_context
from backplane.core.queue import DEFAULT_QUEUE, enqueue
from backplane.events.service import NEW_EVENTS_KEY, new_event_id
from backplane.files.models import File
from backplane.files.repository import FileRepository
from backplane.files.storage import Storage
from backplane.files.types import BY_CONTENT_TYPE
from backplane.jobs import hooks, lifecycle, live, repository
from backplane.jobs.models import Job, JobStatus
from backplane.webhooks import delivery as webhook_flow
from backplane.workers.resilience import Stores

logger = logging.getLogger(__name__)

# A slot's run goes on with the job its completion claimed for as long as this; then the next job is
# sent through arq. Well under arq's time-out for `jobs.run` (the longest agent's limit plus 120 s).
CHAIN_SECONDS = 60.0


# The plan read as a run starts stands for its completion if the run took less than this; a longer run
# reads it again as it ends, so a plan changed meanwhile limits the slot it frees (as one changed while a
# completion is in flight can only race it).
PLAN_FRESH_SECONDS = 1.0

_NO_JOB = "job_warm_up"  # no job has this id (job ids are `job_` and 24 hex digits): the claim matches nothing
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


PlanRead = tuple[int, float]  # a plan's concurrent jobs, and when (the event loop's clock) it was read
Following = tuple[Job, uuid.UUID, Job]  # the job a completion took on for its slot, its token, the completed job


def _announce_completion(pipe: Pipeline, job: Job) -> None:
    """A completion's announcements: to `?wait=` listeners, and to the webhooks' dispatcher."""
    pipe.publish(lifecycle.final_channel(job.id), job.status)
    pipe.lpush(NEW_EVENTS_KEY, "1")
    pipe.ltrim(NEW_EVENTS_KEY, 0, 0)


class Runner:
    """Per-process state of the jobs worker: its resources, running jobs, sweeper and cancel listener."""

    def __init__(
        self,
        settings: Settings,
        dispatcher: lifecycle.Dispatcher,
        storage: Storage,
        http: httpx.AsyncClient,
        stores: Stores | None = None,
        wake: Callable[[], None] | None = None,
        statements: AsyncEngine | None = None,
    ) -> None:
        self.settings = settings
        # The claim and the completion: one statement each, on connections that commit each one.
        # As many connections as runs at once: no run waits for one, none is opened per statement.
        # Each planned once per connection (`generic_plans`): planning the completion cost PostgreSQL 0.4
        # to 0.6 ms, five times its execution (EXPLAIN's planning time). In 3,000-job bursts with two
        # workers, PostgreSQL's CPU went from 4.0 and 4.3 s to 2.9 and 2.9 s.
        self.statements = statements or create_engine(
            settings,
            autocommit=True,
            pool_size=max(settings.database.pool_size, settings.job_worker_concurrency),
            generic_plans=True,
        )
        self.dispatcher = dispatcher
        self.sessionmaker = dispatcher.sessionmaker
        self.redis = dispatcher.redis
        self.queue = dispatcher.queue
        self.storage = storage
        self.http = http
        self.stores = stores or Stores()  # an unreachable store is logged once there, not on every beat
        self.wake = wake  # cuts the worker's poll delay short: a job was just handed out
        self.running: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.cancelled: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Future[None]] = set()  # releases and announcements `stop` waits for
        self.llm: LLMCall | None = llm.chat_completions(settings, http)  # None without LLM_BASE_URL

    # -- one run ------------------------------------------------------------------------------

    async def run(self, job_id: str, token_text: str, trace_context: dict[str, str] | None = None) -> str:
        """The job this message names, then each job that its completion hands the freed slot to, for
        up to CHAIN_SECONDS (so arq's time-out, the longest agent's limit plus 120 s, still holds).

        Each run is a `jobs.run` span: the message's trace context (its dispatch) is the first one's
        parent; a job taken on in this slot continues its own trace, through a dispatch of its own."""
        with tracing.span("jobs.run", parent=trace_context, kind="consumer", job_id=job_id):
            try:
                token = uuid.UUID(token_text)
            except ValueError:
                return "skipped: malformed token"
            # One connection for the slot's whole chain of jobs, not a checkout (and its ping) per statement.
            async with HeldConnection(self.statements) as statements:
                claimed = await repository.claim(await statements.get(), job_id, token, utcnow())
                if claimed is None:
                    return "skipped: not queued with this token"
                chain_until = asyncio.get_running_loop().time() + CHAIN_SECONDS
                outcome, following = await self._run_one(statements, claimed, token, chain_until, None)
                runs = 1
                while following is not None:
                    job, token, finished = following
                    with tracing.span("jobs.run", parent=lifecycle.dispatched(job), kind="consumer", job_id=job.id):
                        outcome, following = await self._run_one(statements, job, token, chain_until, finished)
                    runs += 1
        return outcome if runs == 1 else f"{outcome} (the last of {runs} jobs run in this slot)"

    async def _run_one(
        self, statements: HeldConnection, job: Job, token: uuid.UUID, chain_until: float, finished: Job | None
    ) -> tuple[str, Following | None]:
        """`_run_claimed`, announced and counted. `finished`: the job this slot completed just before,
        whose completion is announced in the same round trip as this one's start."""
        bind_log_context(organization_id=job.organization_id)
        try:
            plan_read = await self._starting(job, finished)
            if job.attempts == 1:  # its own webhook hears of the first attempt only
                await hooks.notify_now(self.sessionmaker, job, self.settings, "start")
        except asyncio.CancelledError:  # shutting down before it ran: back to the queue
            if finished is not None:  # announced again, in case the round trip was cut short
                self._announce_later(finished)
            await self._hand_back(job.id, token)
            raise
        started = _count_start(job)
        outcome, following = await self._run_claimed(statements, job, token, chain_until, plan_read)
        _count_finish(job, outcome, started)
        return outcome, following

    async def _starting(self, job: Job, finished: Job | None) -> PlanRead | None:
        """One round trip as a run starts: the job's streams told it runs, the plan's slots read for its
        completion, and the completion of `finished` announced (as `_announce` does). The slots and when
        they were read; None when the plan is not cached (read at completion)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if finished is not None:
                    _announce_completion(pipe, finished)
                pipe.publish(keys.job_changed_channel(job.id), job.status)
                pipe.get(keys.plan_cache(job.organization_id))
                *_, cached = await pipe.execute()
        except Exception:  # the streams look again within their poll; waiters re-read when their wait ends
            logger.warning("could not announce the start of job %s", job.id, exc_info=True)
            cached = None
        if finished is not None:
            self._report_usage_later(finished)
        plan = cached_plan(cached)
        return None if plan is None else (plan.concurrent_jobs, asyncio.get_running_loop().time())

    async def _run_claimed(
        self, statements: HeldConnection, job: Job, token: uuid.UUID, chain_until: float, plan_read: PlanRead | None
    ) -> tuple[str, Following | None]:
        """One attempt of a job claimed already: its outcome, and the job claimed next for this slot
        (when it completes before `chain_until`, the event loop's clock). `plan_read`: `_starting`'s."""
        job_id = job.id
        attempt, agent_id = job.attempts, job.agent_id
        input_data, config = dict(job.input_data), dict(job.config)
        files: list[AgentFile] = []
        problem: AgentInputError | None = None
        if job.file_ids:
            try:
                async with self.sessionmaker() as session:
                    files = await _files(session, job)
            except AgentInputError as exc:
                problem = exc
            except asyncio.CancelledError:  # shutting down before it ran: back to the queue
                await self._hand_back(job_id, token)
                raise

        agent = get_agent(agent_id)
        if problem is None and agent is None:
            problem = AgentInputError(f"The agent {agent_id!r} is not available.")
        if problem is not None or agent is None:
            await self._fail(job_id, token, {"code": "INVALID_INPUT", "message": str(problem)}, retryable=False)
            return "failed", None

        context = AgentContext(
            job_id=job_id,
            settings=self.settings,
            http=self.http,
            files=files,
            read_file=_reader(self.storage),
            llm=self.llm,
            extras={"attempt": attempt},
            report=partial(self._progress, job),
        )
        task = asyncio.create_task(self._run_agent(agent, context, input_data, config))
        self.running[job_id] = task
        try:
            output = await self._supervise(job_id, token, task)
        except asyncio.CancelledError:
            if job_id in self.cancelled:  # cancelled by the user or taken over: discard everything
                return "cancelled", None
            task.cancel()  # the worker is shutting down (deploy)
            await self._hand_back(job_id, token)
            raise
        except AgentInputError as exc:
            await self._fail(job_id, token, {"code": "INVALID_INPUT", "message": str(exc)}, retryable=False)
            return "failed", None
        except TimeoutError:
            # Final: another attempt would meet the same input under the same limit (and a hostile file
            # would cost three time limits instead of one). The agent's parser was killed with its task.
            message = f"The agent did not finish within its {agent.time_limit_seconds:g} s time limit."
            await self._fail(job_id, token, {"code": "TIMEOUT", "message": message}, retryable=False)
            return "failed", None
        except _Lost:
            return "lost", None
        except Exception as exc:
            logger.warning("job %s attempt %d failed", job_id, attempt, exc_info=True)
            message = f"{type(exc).__name__}: {exc}"[:1000]
            await self._fail(job_id, token, {"code": "AGENT_ERROR", "message": message}, retryable=True)
            return "failed", None
        finally:
            if not task.done():  # whatever ended the supervision, the agent never runs on untracked
                task.cancel()
            self.running.pop(job_id, None)
            self.cancelled.discard(job_id)
        try:
            now = asyncio.get_running_loop().time()
            slots = plan_read[0] if plan_read is not None and now - plan_read[1] < PLAN_FRESH_SECONDS else None
            return await self._complete(statements, job, token, output, run_next=now < chain_until, slots=slots)
        except (DBAPIError, ValueError, TypeError) as exc:  # output PostgreSQL refused despite the cleaning
            logger.warning("job %s output could not be stored", job_id, exc_info=True)
            message = f"The agent's output could not be stored: {type(exc).__name__}."
            await self._fail(job_id, token, {"code": "OUTPUT_INVALID", "message": message}, retryable=False)
            return "failed", None

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
        current = asyncio.current_task()
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.settings.job_heartbeat_seconds)
            if done:
                return task.result()
            try:
                owned = await self._heartbeat(job_id, token)
                last_beat = asyncio.get_running_loop().time()
            except Exception as error:
                if current is not None and current.cancelling():
                    # Cancelled mid-statement (a shutdown), and the driver reported the interrupted
                    # statement as its own error: still a cancellation, so the job is handed back.
                    raise asyncio.CancelledError from error
                if not self.stores.noticed(error):
                    logger.warning("heartbeat of job %s failed", job_id, exc_info=True)
                owned = asyncio.get_running_loop().time() - last_beat < self.settings.job_stall_seconds
            if current is not None and current.cancelling():
                # Cancelled mid-statement, and the driver swallowed the cancellation: the statement
                # ended as if nothing happened. Still a shutdown, so the job is handed back.
                raise asyncio.CancelledError
            if not owned:
                self.cancelled.add(job_id)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise _Lost

    async def _progress(self, job: Job, fraction: float, message: str) -> None:
        """An agent's progress report: to the job's event stream, and (throttled) to its own webhook."""
        await live.report_progress(self.redis, job.id, fraction, message)
        if hooks.wants(job, "progress") and await hooks.progress_due(self.redis, job.id, self.settings):
            progress = {"progress": round(fraction, 4), "message": message}
            await hooks.notify_now(self.sessionmaker, job, self.settings, "progress", progress=progress)

    async def _heartbeat(self, job_id: str, token: uuid.UUID) -> bool:
        async with unit_of_work(self.sessionmaker) as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.dispatch_token == token, Job.status == JobStatus.PROCESSING)
                .values(heartbeat_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _complete(
        self,
        statements: HeldConnection,
        job: Job,
        token: uuid.UUID,
        output: dict[str, Any],
        *,
        run_next: bool,
        slots: int | None,
    ) -> tuple[str, Following | None]:
        """One statement: the job completed with its event, and its slot handed to the next waiting job
        (claimed for this slot with `run_next`, which announces this completion as it starts; else sent
        to the workers through arq). `slots`: the plan's, read as the run started; None: read here,
        while the connection is checked out."""
        reading = None if slots is not None else asyncio.ensure_future(self._slots(job))
        now = utcnow()
        job.status, job.output_data, job.error, job.finished_at = JobStatus.COMPLETED, output, None, now
        next_token, event_id = uuid.uuid4(), new_event_id()
        try:
            connection = await statements.get()
            if reading is not None:
                slots = await reading
            completed, handed, hook = await repository.complete(
                connection,
                job.id,
                token,
                now,
                output,
                event_id=event_id,
                event_data=lifecycle.event_data(job, self.settings),
                event_trace=tracing.mark("job.completed", event_id=event_id, job_id=job.id),
                slots=slots or 0,  # read above when it was not given
                next_token=next_token,
                run_next=run_next,
                hook_id=webhook_flow.new_delivery_id(),
                hook_attempts=webhook_flow.max_attempts(self.settings),
            )
        finally:
            if reading is not None:
                reading.cancel()  # done already, unless the connection could not be had
        if hook is not None:  # lost with Redis? the sweep queues it once it is overdue
            with contextlib.suppress(Exception):
                await enqueue(
                    self.queue,
                    webhook_flow.DELIVER_TASK,
                    hook[0],
                    webhook_flow.job_target(hook[1]),
                    _job_id=webhook_flow.job_id(hook[0], 1),
                    _queue_name=DEFAULT_QUEUE,
                )
        outcome = "completed" if completed else "lost"
        if handed is not None and run_next:  # completed too: the next run's start announces it
            return outcome, (handed, next_token, job)
        if completed:
            self._announce_later(job)
        if handed is not None:
            await self.dispatcher.send([(handed.id, next_token, lifecycle.dispatched(handed))])
        return outcome, None

    async def _slots(self, job: Job) -> int:
        """The plan's concurrent jobs for `job`'s organization; 0 (hand no slot on: the sweeper
        dispatches once the plan reads again) when it cannot be read."""
        try:
            async with self.sessionmaker() as session:  # the plan is cached in Redis: no query, mostly
                return (await self.dispatcher.plan_of(session, job.organization_id)).concurrent_jobs
        except Exception as error:
            if not self.stores.noticed(error):
                logger.warning("the plan of job %s's organization could not be read", job.id, exc_info=True)
            return 0

    def _announce_later(self, job: Job) -> None:
        """`_announce` in the background; `stop` waits for it."""
        self._later(self._announce(job))

    def _report_usage_later(self, job: Job) -> None:
        if self._billed(job):
            self._later(self._report_usage(job))

    def _billed(self, job: Job) -> bool:
        """A live job, and a Stripe to report its usage to."""
        return job.livemode and not self.settings.stripe.local_mode

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        future = asyncio.ensure_future(work)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def _announce(self, job: Job) -> None:
        """After a completion: `?wait=` listeners, the webhooks' dispatcher for the event, and usage."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                _announce_completion(pipe, job)
                await pipe.execute()
        except Exception:  # waiters re-read the job when their wait ends; the dispatch cron finds the event
            logger.warning("could not announce job %s as completed", job.id, exc_info=True)
        if self._billed(job):
            await self._report_usage(job)

    async def _report_usage(self, job: Job) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                await self._report_usage_after_commit(session, job)
        except Exception:
            logger.exception("could not queue the usage report of job %s", job.id)

    async def _report_usage_after_commit(self, session: AsyncSession, job: Job) -> None:
        if self.settings.stripe.local_mode:
            return  # no Stripe to report to (the task would only log that)
        subscription = await SubscriptionRepository(session).get_for_organization(job.organization_id)
        effects(session).enqueue(
            REPORT_USAGE,
            organization_id=str(job.organization_id),
            customer_id=subscription.stripe_customer_id if subscription else None,
            # The platform guide's meter, `{agent}_job_completed`, unless STRIPE_METER_EVENT_NAMES names another.
            event_name=self.settings.stripe.meter_event_name(job.agent_id),
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
                lifecycle.announce_after_commit(session, job)
            self.dispatcher.dispatch_after_commit(session, job.organization_id)

    async def _hand_back(self, job_id: str, token: uuid.UUID) -> None:
        """The worker is shutting down with this job claimed: back to the queue without using up an
        attempt. `stop` waits for it even if the run's task is cancelled again."""
        release = asyncio.ensure_future(self._release(job_id, token))
        self._pending.add(release)
        release.add_done_callback(self._pending.discard)
        await asyncio.shield(release)

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
                self.dispatcher.dispatch_after_commit(session, job.organization_id)
        except Exception:  # the sweeper finds it once its heartbeat is stale
            logger.exception("could not release job %s on shutdown", job_id)

    # -- background: the listener for cancels and wake-ups ----------------------------------

    async def warm(self) -> None:
        """Open, before the first job, the connections the slots' runs will hold, and send the claim on
        each once (claiming nothing): a new connection costs PostgreSQL a backend and asyncpg a look at
        the jobs table's types, which a burst right after start-up would otherwise pay for in its first
        runs. PostgreSQL unreachable: the runs open their connections when they come."""
        opened: list[AsyncConnection] = []
        try:
            for _ in range(self.settings.job_worker_concurrency):
                connection = await self.statements.connect()
                opened.append(connection)
                await repository.claim(connection, _NO_JOB, uuid.uuid4(), utcnow())
        except Exception as error:
            if not self.stores.noticed(error):
                logger.warning("could not open the job runs' connections ahead", exc_info=True)
        finally:
            for connection in opened:  # back to the pool, which keeps them (its size is the concurrency)
                with contextlib.suppress(Exception):
                    await connection.close()

    def start(self) -> None:
        self._background = [asyncio.create_task(self._listen(), name="jobs-listener")]

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(self._pending, timeout=10)
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.statements.dispose()

    def abort(self, job_id: str) -> bool:
        task = self.running.get(job_id)
        if task is None or task.done():
            return False
        self.cancelled.add(job_id)
        task.cancel()
        return True

    async def _listen(self) -> None:
        """Abort a running job the moment its cancellation commits (the heartbeat would also notice),
        and poll arq's queue the moment a job is handed out (rather than after the poll delay)."""
        broken = False  # a streak of failed subscriptions is logged once, when it starts
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(lifecycle.CANCEL_CHANNEL, lifecycle.WAKE_CHANNEL)
                    if broken:
                        logger.info("job listener subscribed again")
                        broken = False
                    async for channel, data in _messages(pubsub):
                        if (channel.decode() if isinstance(channel, bytes) else channel) == lifecycle.WAKE_CHANNEL:
                            if self.wake is not None:
                                self.wake()
                            continue
                        job_id = data.decode() if isinstance(data, bytes) else str(data)
                        if self.abort(job_id):
                            logger.info("job %s cancelled while running: aborted", job_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self.stores.noticed(error) and not broken:
                    logger.warning(
                        "job listener lost its subscription (%s: %s); reconnecting", type(error).__name__, error
                    )
                broken = True
                await asyncio.sleep(1)


# Shorter than any sensible REDIS_TIMEOUT_SECONDS: an idle subscription waits in these slices, so its
# read never hits the socket's timeout (which `listen()` turned into an error, and a reconnect, every
# few seconds of quiet).
_PUBSUB_WAIT_SECONDS = 1.0


def _count_start(job: Job) -> float:
    """Count a run's start and its wait since the job became due; the run's start on the loop's clock."""
    metrics.JOBS_STARTED.labels(job.agent_id).inc()
    if job.started_at is not None:
        due = max(moment for moment in (job.queued_at or job.created_at, job.run_after) if moment is not None)
        metrics.JOB_QUEUE_WAIT.labels(job.agent_id).observe(max(0.0, (job.started_at - due).total_seconds()))
    return time.perf_counter()


def _count_finish(job: Job, outcome: str, started: float) -> None:
    metrics.JOBS_FINISHED.labels(job.agent_id, outcome).inc()
    metrics.JOB_RUN_TIME.labels(job.agent_id).observe(time.perf_counter() - started)


async def _messages(pubsub: Any) -> AsyncIterator[tuple[Any, Any]]:
    """(channel, data) of each message."""
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_PUBSUB_WAIT_SECONDS)
        if message is not None and message.get("type") == "message":
            yield message["channel"], message["data"]


async def run_job_task(
    ctx: dict[str, Any], job_id: str, token: str, trace_context: dict[str, str] | None = None
) -> str:
    """`jobs.run`: one attempt of one job (on the agent-jobs queue). `trace_context`: the dispatch's
    (core/tracing.py), in messages sent while tracing is on."""
    runner: Runner = ctx["runner"]
    with log_context(job_id=job_id):
        return await runner.run(job_id, token, trace_context)
