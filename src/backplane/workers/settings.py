"""arq worker: `backplane worker` runs `WorkerSettings`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

from arq import Retry
from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from backplane.agents import registry, sandbox
from backplane.auth.mail import MAIL_LINK_TASK
from backplane.auth.tasks import mail_link_task, send_email_task
from backplane.billing.stripe_client import close_stripe_client, create_stripe_client
from backplane.billing.sync import RECONCILE_TASK
from backplane.billing.tasks import reconcile_task, report_usage_task
from backplane.billing.usage import REPORT_USAGE
from backplane.core.config import Settings, get_settings
from backplane.core.crypto import Encryptor
from backplane.core.db import create_engine, create_sessionmaker
from backplane.core.email import SEND_EMAIL
from backplane.core.netguard import customer_client
from backplane.core.queue import DEFAULT_QUEUE
from backplane.core.ratelimit import RateLimiter
from backplane.core.redis import create_redis
from backplane.core.tracing import instrument_engine, start_worker
from backplane.files.storage import create_storage
from backplane.files.tasks import cleanup_pending_task
from backplane.idempotency.service import purge_expired_task
from backplane.jobs.lifecycle import JOBS_QUEUE, RUN_FUNCTION, Dispatcher
from backplane.jobs.runner import Runner, run_job_task
from backplane.jobs.tasks import SWEEP_TASK
from backplane.jobs.tasks import sweep_task as jobs_sweep_task
from backplane.licenses.leases import Leases
from backplane.licenses.recovery import LeaseRestorer
from backplane.licenses.tasks import announce_expiry_task, record_ended_sessions_task
from backplane.webhooks.delivery import PROBE_TASK
from backplane.webhooks.recovery import RECOVER_TASK, recover_task
from backplane.webhooks.sender import new_client as new_webhook_client
from backplane.webhooks.tasks import (
    CHAIN_SECONDS,
    deliver_task,
    dispatch_task,
    probe_task,
    start_listening,
    stop_listening,
    sweep_task,
)
from backplane.workers.resilience import stores_of

logger = logging.getLogger(__name__)


async def startup(ctx: dict[str, Any]) -> None:
    settings = ctx.get("settings") or get_settings()
    ctx["settings"] = settings
    # What `shutdown` closes, registered as each thing is opened: a stop can come while start-up is still
    # under way (a rollout's SIGTERM right after the start), and arq runs `on_shutdown` all the same.
    closing = ctx["closing"] = contextlib.AsyncExitStack()
    ctx["encryptor"] = Encryptor(settings.encryption_key_ring)
    ctx["engine"] = create_engine(settings)
    closing.push_async_callback(ctx["engine"].dispose)
    start_worker(ctx)  # OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set
    ctx["redis_app"] = create_redis(settings)
    closing.push_async_callback(ctx["redis_app"].aclose)
    ctx["sessionmaker"] = create_sessionmaker(ctx["engine"], redis=ctx["redis_app"], queue=ctx.get("redis"))
    ctx["leases"] = Leases(ctx["redis_app"], restore=LeaseRestorer(settings))
    ctx["limiter"] = RateLimiter(ctx["redis_app"])
    ctx["stripe"] = create_stripe_client(settings.stripe)  # None in local billing mode
    closing.push_async_callback(close_stripe_client, ctx["stripe"])
    ctx["storage"] = await create_storage(settings)
    closing.push_async_callback(ctx["storage"].aclose)
    registry.load(test_agents=settings.agent_test_mode)
    ctx["webhook_http"] = new_webhook_client(settings)
    closing.push_async_callback(ctx["webhook_http"].close)
    if "redis" in ctx:  # arq's pool, which arq puts there before startup (a test may call startup alone)
        ctx["dispatcher"] = Dispatcher(ctx["sessionmaker"], ctx["redis_app"], ctx["redis"], settings)
    if not ctx.get("jobs_worker"):
        logger.info("task worker started (queue %s)", DEFAULT_QUEUE)


def _freeze_start_up() -> None:
    """What start-up built (modules, agents and their libraries, clients) lives as long as the worker:
    out of the cyclic collector's sight, as the API does (app.py), so that its collections walk only
    what jobs and deliveries allocate. A full collection of that heap (about 200,000 objects) takes
    over 100 ms on a 2-core machine, and pauses every job and delivery under way."""
    gc.freeze()


async def shutdown(ctx: dict[str, Any]) -> None:
    """Close what start-up got to open, the last opened first (each close is tried even if one fails)."""
    gc.unfreeze()  # collectable again once the worker stops (a process that runs workers again, as tests do)
    closing: contextlib.AsyncExitStack | None = ctx.pop("closing", None)
    if closing is not None:
        await closing.aclose()


async def tasks_startup(ctx: dict[str, Any]) -> None:
    """The short-task worker also dispatches new events the moment they commit (`webhooks.listen`).

    `ctx["webhook_listener"] = False` leaves that out (tests that run dispatch themselves).
    """
    await startup(ctx)
    if ctx.get("webhook_listener", True):
        start_listening(ctx)
        ctx["closing"].push_async_callback(stop_listening, ctx)  # first to stop: it uses everything else
    _freeze_start_up()


def _through_outages(task: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    """A task that finds PostgreSQL or Redis unreachable is tried again later (arq `Retry`, within its
    max_tries), and the outage is logged once by the process, not as a traceback per try."""

    @functools.wraps(task)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await task(ctx, *args, **kwargs)
        except Exception as error:
            if not stores_of(ctx).noticed(error):
                raise
            settings: Settings = ctx["settings"]
            raise Retry(defer=settings.recovery_seconds / 3 * int(ctx.get("job_try", 1))) from error

    return cast(WorkerCoroutine, run)


def _skipped_in_outages(task: Callable[[dict[str, Any]], Awaitable[Any]]) -> WorkerCoroutine:
    """A cron run that finds a store unreachable just ends (the next run does its work); the outage is
    logged once by the process."""

    @functools.wraps(task)
    async def run(ctx: dict[str, Any]) -> Any:
        try:
            return await task(ctx)
        except Exception as error:
            if not stores_of(ctx).noticed(error):
                raise
            return None

    return cast(WorkerCoroutine, run)


FUNCTIONS: list[Function] = [
    func(_through_outages(send_email_task), name=SEND_EMAIL, max_tries=5, timeout=30),
    func(_through_outages(mail_link_task), name=MAIL_LINK_TASK, max_tries=5, timeout=30),
    func(_through_outages(report_usage_task), name=REPORT_USAGE, max_tries=5),
    # keep_result=0: a finished attempt leaves no result behind, so the sweep can queue the same
    # job id again if that attempt turns out lost. The timeout covers a chain of attempts to one
    # endpoint (CHAIN_SECONDS) and the last one's own deadline (at most 60 s).
    func(
        _through_outages(deliver_task), name="webhooks.deliver", max_tries=5, keep_result=0, timeout=CHAIN_SECONDS + 90
    ),
    # The probe of an endpoint whose breaker's back-off ended: one attempt (slots.py).
    func(_through_outages(probe_task), name=PROBE_TASK, max_tries=5, keep_result=0, timeout=CHAIN_SECONDS + 90),
    # One recovery sends its events one after another: hours for a long window, so no arq timeout of
    # its own beyond a day; a recovery that a lost worker leaves `running` is resumed by its next try.
    func(_through_outages(recover_task), name=RECOVER_TASK, max_tries=3, keep_result=0, timeout=86_400),
]


def jobs_sweep(sweep_seconds: float) -> CronJob:
    """Declared on both workers (one run per tick across them): a deployment of jobs workers alone
    still recovers lost runs and retries jobs after their backoff."""
    step = max(1, min(60, int(sweep_seconds)))
    return cron(_skipped_in_outages(jobs_sweep_task), name=SWEEP_TASK, second=set(range(0, 60, step)), timeout=60)


# Crons that run every few seconds whether or not there is work: their start and end lines are not
# logged (core/logs.py RoutineRuns), so that an idle worker is quiet.
ROUTINE_CRONS = (SWEEP_TASK, "webhooks.dispatch", "webhooks.sweep")


def cron_jobs(recovery_seconds: float, sweep_seconds: float = 2.0) -> list[CronJob]:
    # The webhook sweep runs every third of RECOVERY_SECONDS (at most every minute), so a delivery whose
    # job Redis lost is queued again within RECOVERY_SECONDS of Redis answering.
    step = max(1, min(60, int(recovery_seconds // 3)))
    return [
        jobs_sweep(sweep_seconds),
        cron(
            _skipped_in_outages(record_ended_sessions_task),
            name="licenses.record_ended",
            second=0,
            timeout=120,
            run_at_startup=True,
        ),
        # Daily: license.expiring (7 days and 1 day before) and license.expired, once each.
        cron(
            _skipped_in_outages(announce_expiry_task),
            name="licenses.announce_expiry",
            hour=0,
            minute=20,
            second=0,
            timeout=600,
        ),
        cron(
            _skipped_in_outages(cleanup_pending_task),
            name="files.cleanup_pending",
            minute={0, 15, 30, 45},
            second=30,
            timeout=300,
        ),
        # Every 5 s, the safety net: events are dispatched the moment they commit (`webhooks.listen`),
        # unless that wake-up was lost (Redis unreachable right then, or no worker listening).
        cron(
            _skipped_in_outages(dispatch_task),
            name="webhooks.dispatch",
            second=set(range(0, 60, 5)),
            timeout=60,
            run_at_startup=True,
        ),
        cron(_skipped_in_outages(sweep_task), name="webhooks.sweep", second=set(range(0, 60, step)), timeout=60),
        cron(_skipped_in_outages(purge_expired_task), name="idempotency.purge", minute=7, second=15, timeout=300),
        # Daily: Stripe is the source of truth, and a lost webhook is repaired within a day.
        cron(
            _skipped_in_outages(reconcile_task),
            name=RECONCILE_TASK,
            hour=3,
            minute=41,
            second=0,
            timeout=3600,
        ),
    ]


CRON_JOBS: list[CronJob] = cron_jobs(
    Settings.model_fields["recovery_seconds"].default, Settings.model_fields["job_sweep_interval_seconds"].default
)


class WorkerSettings:
    functions: ClassVar[list[Function]] = FUNCTIONS
    cron_jobs: ClassVar[list[CronJob]] = CRON_JOBS
    on_startup = tasks_startup
    on_shutdown = shutdown
    queue_name = DEFAULT_QUEUE
    # Webhook attempts mostly wait on the network; one endpoint holds at most
    # WEBHOOK_ENDPOINT_CONCURRENCY of these slots, however slow it is.
    max_jobs = 50
    # How often an idle worker looks for due jobs: a new event's first attempt waits up to this long.
    poll_delay = 0.1


def redis_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings. No connection retries of arq's own: `ResilientWorker` retries for
    as long as Redis is away, with its own backoff."""
    redis_settings = RedisSettings.from_dsn(settings.redis.url)
    redis_settings.conn_retries = 0
    return redis_settings


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` / `run_worker`, bound to these settings."""
    return {
        "redis_settings": redis_settings(settings),
        "ctx": {"settings": settings},
    }


# Agent jobs run on their own queue: arq recovers a job from a dead worker only after that queue's
# longest function timeout, and a 10-minute agent must not hold up a 10-second webhook delivery.
# Recovery of agent jobs does not wait for arq at all: heartbeats and the sweeper (jobs/tasks.py).


async def jobs_startup(ctx: dict[str, Any]) -> None:
    ctx["jobs_worker"] = True
    await startup(ctx)
    settings: Settings = ctx["settings"]
    ctx["http"] = customer_client(15.0)  # agent fetches go to customer URLs; the LLM call shares it
    ctx["closing"].push_async_callback(ctx["http"].aclose)
    await asyncio.to_thread(sandbox.start_fork_server)  # parsers' processes fork from it (agents/sandbox.py)
    runner = Runner(settings, ctx["dispatcher"], ctx["storage"], ctx["http"], stores_of(ctx), wake=ctx.get("wake_poll"))
    ctx["closing"].push_async_callback(runner.stop)  # hands running jobs back, then closes its connections
    instrument_engine(runner.statements)
    await runner.warm()
    ctx["runner"] = runner
    runner.start()
    _freeze_start_up()
    logger.info("agent jobs worker started (queue %s, %d at once)", JOBS_QUEUE, settings.job_worker_concurrency)


def jobs_worker_options(settings: Settings) -> dict[str, Any]:
    """`arq.Worker` keyword arguments for the agent-jobs queue."""
    longest = max([a.time_limit_seconds for a in registry.all_agents()] + [600.0])
    return {
        "functions": [
            # arq's own retry count is irrelevant: attempts are counted in PostgreSQL, and a message
            # re-run after a crash finds its dispatch token stale and does nothing.
            func(_through_outages(run_job_task), name=RUN_FUNCTION, max_tries=1000, timeout=longest + 120),
        ],
        "cron_jobs": [jobs_sweep(settings.job_sweep_interval_seconds)],
        "queue_name": JOBS_QUEUE,
        "on_startup": jobs_startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.job_worker_concurrency,
        "poll_delay": settings.job_poll_seconds,
        "keep_result": 60,
        "redis_settings": redis_settings(settings),
        "ctx": {"settings": settings},
    }
