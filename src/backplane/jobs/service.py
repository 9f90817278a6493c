"""Creating, cancelling and retrying jobs (the API side of the lifecycle)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.agents.base import HEAD_BYTES, Agent, InputFile
from backplane.agents.registry import all_agents, get_agent
from backplane.billing import consumption, quota
from backplane.billing.plans import Plan
from backplane.core import metrics, tracing
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.effects import effects
from backplane.core.errors import AppError, Conflict, InvalidInput, NotFound, field_errors
from backplane.core.fields import parse_json_object
from backplane.core.ids import is_id, new_id
from backplane.files.models import File
from backplane.files.receive import StoredFile, receive_multipart, too_large, unsupported
from backplane.files.repository import FileRepository
from backplane.files.service import new_file_id, storage_key
from backplane.files.storage import Storage
from backplane.files.types import BY_CONTENT_TYPE
from backplane.jobs import hooks, lifecycle, maintenance
from backplane.jobs.models import FINAL_STATUSES, Job, JobStatus, JobTransition
from backplane.jobs.repository import JobRepository
from backplane.jobs.schemas import MAX_FILES_PER_JOB, JobCreate
from backplane.webhooks.service import checked_url

_PRIORITY = re.compile(r"-?[0-9]{1,3}")
logger = logging.getLogger(__name__)


class JobNotCompleted(AppError):
    status_code, code, title = 409, "JOB_NOT_COMPLETED", "Job not completed"


@dataclass(frozen=True, slots=True)
class JobsContext:
    """What job operations need besides the request's session."""

    settings: Settings
    redis: Redis
    dispatcher: lifecycle.Dispatcher
    plan: Plan
    storage: Storage | None = None  # read for the heads of files an agent inspects at creation


def new_job_id() -> str:
    return new_id("job")


def _agent_or_error(agent_id: str, field: str) -> Agent:
    agent = get_agent(agent_id)
    if agent is None:
        known = ", ".join(a.id for a in all_agents())
        raise InvalidInput({field: [f"Unknown agent {agent_id!r}; one of: {known}."]})
    return agent


def validate_spec(agent: Agent, spec: JobCreate, prefix: str = "") -> dict[str, list[str]]:
    """The agent's own checks of `input_data` and `config`: field errors, empty when valid."""
    errors: dict[str, list[str]] = {}
    for name, model, value in (
        ("input_data", agent.input_model, spec.input_data),
        ("config", agent.config_model, spec.config),
    ):
        try:
            encoded = json.dumps(value, allow_nan=False)
        except ValueError:
            errors[f"{prefix}{name}"] = ["Numbers must be finite (no NaN, Infinity or out-of-range values)."]
            continue
        if "\\u0000" in encoded:  # PostgreSQL's jsonb cannot store NUL
            errors[f"{prefix}{name}"] = ["Text must not contain NUL (\\u0000) characters."]
            continue
        try:
            model.model_validate(value)
        except ValidationError as exc:
            errors.update(field_errors(exc.errors(), f"{prefix}{name}"))
        except (ValueError, TypeError, OSError) as exc:  # a validator that failed without pydantic's wrapper
            errors[f"{prefix}{name}"] = [f"Invalid value: {type(exc).__name__}."]
    if len(spec.file_ids) > agent.max_files:
        errors[f"{prefix}file_ids"] = [f"{agent.id} takes at most {agent.max_files} files."]
    return errors


def _check_file(agent: Agent, file: File) -> list[str]:
    file_type = BY_CONTENT_TYPE.get(file.content_type)
    type_name = file_type.name if file_type else None
    if type_name not in agent.file_types:
        accepted = ", ".join(sorted(agent.file_types)) or "no files"
        return [f"{agent.id} does not take {file.content_type} files; it takes {accepted}."]
    if file.size_bytes > agent.max_file_bytes:
        return [f"{file.id} is larger than {agent.id}'s limit of {agent.max_file_bytes} bytes."]
    return []


async def _check_files(
    session: AsyncSession, principal: Principal, specs: Sequence[tuple[Agent, JobCreate, str]]
) -> tuple[dict[str, list[str]], dict[str, File]]:
    """Every file must be a ready file of this organization and mode (else 404) that its agent takes.
    (field errors, the files by id)."""
    wanted = {file_id for _, spec, _ in specs for file_id in spec.file_ids}
    if not wanted:
        return {}, {}
    for file_id in sorted(wanted):
        if not is_id(file_id, "file"):  # names no file (and may hold what PostgreSQL refuses, such as NUL)
            raise NotFound(f"No file with id {file_id!r}.", details={"file_id": file_id})
    repository = FileRepository(session, principal.organization_id, principal.livemode)
    found = {f.id: f for f in (await session.execute(repository.select().where(File.id.in_(wanted)))).scalars()}
    errors: dict[str, list[str]] = {}
    for agent, spec, prefix in specs:
        for index, file_id in enumerate(spec.file_ids):
            file = found.get(file_id)
            if file is None or file.status != "ready":
                raise NotFound(f"No file with id {file_id!r}.", details={"file_id": file_id})
            problems = _check_file(agent, file)
            if problems:
                errors[f"{prefix}file_ids.{index}"] = problems
    return errors, found


async def _head(storage: Storage, key: str) -> bytes:
    head = b""
    chunks = storage.read(key, chunk_size=HEAD_BYTES)
    try:
        async for chunk in chunks:
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
    finally:
        close = getattr(chunks, "aclose", None)  # the file is let go now, not when collected
        if close is not None:
            await close()
    return head[:HEAD_BYTES]


async def _check_inputs(
    storage: Storage | None, specs: Sequence[tuple[Agent, JobCreate, str]], files: dict[str, File]
) -> dict[str, list[str]]:
    """Each agent's own judgement of its already valid input: what could never produce output."""
    errors: dict[str, list[str]] = {}
    for agent, spec, prefix in specs:
        named: list[InputFile] = []
        for file_id in spec.file_ids:
            file = files[file_id]
            kind = BY_CONTENT_TYPE.get(file.content_type)
            type_name = kind.name if kind else ""
            head = None
            if storage is not None and type_name in agent.inspected_types:
                try:
                    head = await _head(storage, file.storage_key)
                except Exception:  # unreadable now: the run reads it again and says why it cannot
                    logger.warning("could not read the head of %s to check it", file.id, exc_info=True)
            named.append(InputFile(file.id, file.filename, type_name, file.size_bytes, head))
        found = agent.check_input(
            agent.input_model.model_validate(spec.input_data), agent.config_model.model_validate(spec.config), named
        )
        errors.update({f"{prefix}{field}": messages for field, messages in found.items()})
    return errors


async def _webhook_errors(spec: JobCreate, prefix: str, settings: Settings) -> dict[str, list[str]]:
    """A job's own webhook is held to the rules of an organization's webhook URL (webhooks/service.py)."""
    if spec.webhook is None:
        if spec.webhook_events_filter is not None:
            return {f"{prefix}webhook_events_filter": ["Only with a `webhook`: name the URL to notify."]}
        return {}
    try:
        await checked_url(spec.webhook, settings, f"{prefix}webhook")
    except InvalidInput as exc:
        return exc.fields
    return {}


def _creator(principal: Principal) -> str | None:
    if principal.api_key is not None:
        return f"key:{principal.api_key.prefix}"
    if principal.user is not None:
        return f"user:{principal.user.id}"
    return None


async def create_jobs(
    session: AsyncSession, jobs: JobsContext, principal: Principal, specs: Sequence[JobCreate], *, batch: bool
) -> list[Job]:
    """Validate every job (all or none), take them from the monthly quota, and queue them."""
    checked: list[tuple[Agent, JobCreate, str]] = []
    errors: dict[str, list[str]] = {}
    for index, spec in enumerate(specs):
        prefix = f"jobs.{index}." if batch else ""
        try:
            agent = _agent_or_error(spec.agent_id, f"{prefix}agent_id")
        except InvalidInput as exc:
            errors.update(exc.fields)
            continue
        errors.update(validate_spec(agent, spec, prefix))
        errors.update(await _webhook_errors(spec, prefix, jobs.settings))
        checked.append((agent, spec, prefix))
    file_errors, files = await _check_files(session, principal, checked)
    errors.update(file_errors)
    if errors:
        raise InvalidInput(errors)
    # Only now, with every schema and file valid: what the agents themselves know cannot run.
    errors.update(await _check_inputs(jobs.storage, checked, files))
    if errors:
        raise InvalidInput(errors)

    now = utcnow()
    await _ensure_counted(session, jobs, principal, now)
    used = await quota.consume(jobs.redis, principal.organization_id, jobs.plan, now, amount=len(specs))
    try:
        await consumption.note_thresholds(session, principal.organization_id, jobs.plan, used - len(specs), used, now)
        created: list[Job] = []
        repository = JobRepository(session, principal.organization_id, principal.livemode)
        for _, spec, _ in checked:
            job = Job(
                id=new_job_id(),
                organization_id=principal.organization_id,
                livemode=principal.livemode,
                agent_id=spec.agent_id,
                status=JobStatus.PENDING,
                priority=spec.priority,
                input_data=spec.input_data,
                config=spec.config,
                file_ids=spec.file_ids,
                attempts=0,
                max_attempts=jobs.settings.job_max_attempts,
                created_by=_creator(principal),
                created_at=now,
                trace_context=tracing.carrier(),  # its dispatch and run continue the request's trace
                webhook=spec.webhook,
                webhook_events_filter=(
                    list(spec.webhook_events_filter or hooks.NOTIFICATIONS) if spec.webhook else None
                ),
            )
            repository.add(job)
            created.append(job)
        await lifecycle.queue_new(session, created, now, reason="validated; within quota")
        # Handed to the workers by this same transaction when a slot is free (rows this transaction
        # has just written are locked by no one else: see `Dispatcher.hand_out`).
        handed = set(await jobs.dispatcher.hand_out(session, principal.organization_id, jobs.plan))
        await maintenance.note_why_waiting(session, [job for job in created if job.id not in handed])
    except BaseException:
        await quota.give_back(jobs.redis, principal.organization_id, now, amount=len(specs))
        raise
    effects(session).call(partial(_count_created, [job.agent_id for job in created]), "counting the created jobs")
    return created


async def _count_created(agent_ids: list[str]) -> None:
    for agent_id in agent_ids:
        metrics.JOBS_CREATED.labels(agent_id).inc()


async def _ensure_counted(session: AsyncSession, jobs: JobsContext, principal: Principal, now: datetime) -> None:
    """Rebuild the month's counter from PostgreSQL if Redis lost it (before anything creates it anew)."""
    if jobs.plan.jobs_per_month is None or await quota.is_counted(jobs.redis, principal.organization_id, now):
        return
    counted = await _counted_this_month(session, principal, now)
    await quota.reconcile(jobs.redis, principal.organization_id, counted, now, only_if_missing=True)


async def _counted_this_month(session: AsyncSession, principal: Principal, now: datetime) -> int:
    """This month's jobs as the quota counts them: all created, less those cancelled before they ran."""
    start, _ = quota.period_bounds(now)
    stmt = select(func.count()).where(
        Job.organization_id == principal.organization_id,
        Job.created_at >= start,
        ~((Job.status == JobStatus.CANCELLED) & (Job.attempts == 0)),
    )
    return int((await session.execute(stmt)).scalar_one())


MAX_FORM_JSON_BYTES = 1024 * 1024  # input_data or config sent as a multipart field


def _json_field(raw: str | None, name: str) -> dict[str, Any]:
    try:
        return parse_json_object(raw, MAX_FORM_JSON_BYTES)
    except ValueError as exc:
        raise InvalidInput({name: [str(exc)]}) from None


async def create_from_multipart(
    session: AsyncSession,
    jobs: JobsContext,
    storage: Storage,
    principal: Principal,
    content_type: str,
    body: AsyncIterator[bytes],
) -> Job:
    """`multipart/form-data`: `agent_id`, `config`, `input_data`, `priority`, `file_ids`, repeated `files`.

    Each uploaded file becomes a file of the organization, checked against the agent's types and
    size; the job then runs on them (plus any `file_ids` given).
    """

    def new_file() -> tuple[str, str]:
        file_id = new_file_id()
        return file_id, storage_key(principal, file_id)

    form = await receive_multipart(
        content_type,
        body,
        storage,
        file_fields={"files", "file"},
        new_file=new_file,
        limit=jobs.plan.max_upload_bytes,
        max_files=MAX_FILES_PER_JOB,
    )
    try:
        if not form.fields.get("agent_id"):
            raise InvalidInput({"agent_id": ["This field is required."]})
        agent = _agent_or_error(form.fields["agent_id"], "agent_id")
        priority_raw = (form.fields.get("priority") or "0").strip()
        if not _PRIORITY.fullmatch(priority_raw) or not -100 <= int(priority_raw) <= 100:
            raise InvalidInput({"priority": ["Must be an integer from -100 to 100."]})
        listed = [f.strip() for f in (form.fields.get("file_ids") or "").split(",") if f.strip()]
        for stored in form.files:
            _check_stored(agent, stored)
        try:
            spec = JobCreate(
                agent_id=agent.id,
                input_data=_json_field(form.fields.get("input_data"), "input_data"),
                config=_json_field(form.fields.get("config"), "config"),
                file_ids=[s.file_id for s in form.files] + listed,
                priority=int(priority_raw),
                webhook=form.fields.get("webhook") or None,
                webhook_events_filter=_names(form.fields.get("webhook_events_filter")),
            )
        except ValidationError as exc:  # e.g. more than 10 files, uploaded and listed together
            raise InvalidInput(field_errors(exc.errors())) from None
        for stored in form.files:
            await stored.writer.commit()
    except BaseException:
        await form.abort()
        raise
    files = FileRepository(session, principal.organization_id, principal.livemode)
    try:
        for stored in form.files:
            files.add(
                File(
                    id=stored.file_id,
                    organization_id=principal.organization_id,
                    livemode=principal.livemode,
                    filename=stored.filename[:255],
                    content_type=stored.file_type.content_type,
                    size_bytes=stored.size,
                    sha256=stored.sha256,
                    status="ready",
                    metadata_={"uploaded_with": "job"},
                    storage_key=stored.key,
                )
            )
        await session.flush()
        [job] = await create_jobs(session, jobs, principal, [spec], batch=False)
    except BaseException:
        for stored in form.files:
            await storage.delete(stored.key)
        raise
    return job


def _names(raw: str | None) -> list[str] | None:
    """A comma-separated form field as a list (None when absent)."""
    if raw is None or not raw.strip():
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def _check_stored(agent: Agent, stored: StoredFile) -> None:
    if stored.file_type.name not in agent.file_types:
        raise unsupported(stored.filename)
    if stored.size > agent.max_file_bytes:
        raise too_large(agent.max_file_bytes)


async def get_job(session: AsyncSession, principal: Principal, job_id: str, *, for_update: bool = False) -> Job:
    return await find_job(session, principal.organization_id, principal.livemode, job_id, for_update=for_update)


async def find_job(
    session: AsyncSession, organization_id: uuid.UUID, livemode: bool, job_id: str, *, for_update: bool = False
) -> Job:
    job = await JobRepository(session, organization_id, livemode).get_by_public_id(job_id, for_update=for_update)
    if job is None:
        raise NotFound("No job with this id.")
    return job


async def cancel(session: AsyncSession, jobs: JobsContext, principal: Principal, job_id: str) -> Job:
    """Cancel a job in any non-final state; a running job is aborted and its partial output discarded."""
    job = await get_job(session, principal, job_id, for_update=True)
    if job.status in FINAL_STATUSES:
        raise Conflict(f"The job is already {job.status}.", details={"status": job.status})
    now = utcnow()
    was_running = job.status == JobStatus.PROCESSING
    never_started = job.attempts == 0 and not was_running
    job.output_data = None
    job.heartbeat_at = None
    lifecycle.transition(session, job, JobStatus.CANCELLED, now, reason="cancelled by the user")
    hooks.notify(session, job, jobs.settings, "completed")
    lifecycle.announce_after_commit(session, job)
    job_ref = job.id

    created_at = job.created_at
    organization_id = principal.organization_id

    if was_running:  # lost: the heartbeat stops a running job within seconds anyway
        effects(session).publish(lifecycle.CANCEL_CHANNEL, job_ref)
    if never_started:  # it never used a worker: the month it was created in gets it back

        async def _refund() -> None:
            await quota.give_back(jobs.redis, organization_id, created_at)

        effects(session).call(_refund, f"refunding cancelled job {job_ref}")
    jobs.dispatcher.dispatch_after_commit(session, principal.organization_id, jobs.plan)
    return job


async def retry(session: AsyncSession, jobs: JobsContext, principal: Principal, job_id: str) -> Job:
    """Run a dead-lettered (or failed) job again from its first attempt; counts against the quota again."""
    job = await get_job(session, principal, job_id, for_update=True)
    if job.status not in (JobStatus.DEAD_LETTER, JobStatus.FAILED):
        raise Conflict(
            f"Only failed or dead-lettered jobs can be retried; this one is {job.status}.",
            details={"status": job.status},
        )
    now = utcnow()
    await _ensure_counted(session, jobs, principal, now)
    used = await quota.consume(jobs.redis, principal.organization_id, jobs.plan, now)
    await consumption.note_thresholds(session, principal.organization_id, jobs.plan, used - 1, used, now)
    job.attempts = 0
    job.error = None
    job.output_data = None
    job.started_at = None
    job.trace_context = tracing.carrier() or job.trace_context  # the retry's request, when traced
    job.finished_at = None
    lifecycle.transition(session, job, JobStatus.QUEUED, now, reason="retried by the user")
    jobs.dispatcher.dispatch_after_commit(session, principal.organization_id, jobs.plan)
    return job


async def history(session: AsyncSession, job: Job) -> list[JobTransition]:
    stmt = select(JobTransition).where(JobTransition.job_id == job.id).order_by(JobTransition.at, JobTransition.id)
    return list((await session.execute(stmt)).scalars())
