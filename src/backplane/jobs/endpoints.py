"""`/v1/jobs` and `/v1/agents`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import AwareDatetime, ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.access.requirements import Idempotent, Reader, Writer
from backplane.agents.examples import openapi_examples
from backplane.agents.registry import all_agents, get_agent
from backplane.agents.reports.formats import FORMATS
from backplane.billing.deps import PlanDep, PlatformLimit
from backplane.core.body_limit import streams_body
from backplane.core.db import SessionDep, commit
from backplane.core.deps import SettingsDep
from backplane.core.errors import NotFound, validation_error
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, created_between, page_params, paginate
from backplane.core.redis import RedisDep
from backplane.files.deps import StorageDep
from backplane.files.receive import MULTIPART_OVERHEAD, too_large
from backplane.jobs import lifecycle, live, maintenance, outputs, service
from backplane.jobs.models import Job, JobStatus
from backplane.jobs.repository import JobRepository
from backplane.jobs.schemas import (
    MAX_FILES_PER_JOB,
    AgentConfig,
    AgentSummary,
    JobBatchCreate,
    JobBatchRead,
    JobCreate,
    JobOutput,
    JobRead,
    JobTransitionRead,
)
from backplane.webhooks import endpoints as webhook_endpoints
from backplane.webhooks.models import WebhookDelivery
from backplane.webhooks.repository import WebhookDeliveryRepository
from backplane.webhooks.schemas import DeliveryDetail
from backplane.webhooks.signing import job_payload

router = APIRouter(
    prefix="/v1/jobs",
    tags=["Jobs"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)
agents_router = APIRouter(
    prefix="/v1/agents", tags=["Agents"], responses=platform_errors(401, 404, 429), dependencies=[PlatformLimit]
)

MAX_WAIT_SECONDS = 60


async def _jobs_context(
    request: Request, redis: RedisDep, settings: SettingsDep, plan: PlanDep, storage: StorageDep
) -> service.JobsContext:
    return service.JobsContext(settings, redis, request.app.state.dispatcher, plan, storage)


JobsDep = Annotated[service.JobsContext, Depends(_jobs_context)]


def _read(job: Job) -> JobRead:
    return JobRead.model_validate({**lifecycle.job_data(job), "status_reason": job.status_reason})


_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/JobCreate"},
                "examples": openapi_examples(),  # one per agent use case
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["agent_id"],
                    "properties": {
                        "agent_id": {"type": "string", "example": "taylor"},
                        "input_data": {"type": "string", "description": "A JSON object."},
                        "config": {
                            "type": "string",
                            "description": "A JSON object.",
                            "example": '{"extraction_type":"ocr"}',
                        },
                        "priority": {"type": "integer", "default": 0},
                        "file_ids": {"type": "string", "description": "Comma-separated ids of files already uploaded."},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": f"Up to {MAX_FILES_PER_JOB} files; each becomes a file of the organization.",
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobRead,
    summary="Create a job",
    description="JSON `{agent_id, input_data, config, file_ids, priority}`, or multipart with the files "
    "themselves (`files`, repeated). The job is validated against the agent's schema and the month's quota "
    "(429 `QUOTA_EXCEEDED`), then queued; it runs as soon as the organization has a free slot "
    "(the plan's concurrent-job limit). Send `Idempotency-Key` to make retries safe.",
    openapi_extra=_CREATE_BODY,
    responses={413: {"description": "PAYLOAD_TOO_LARGE"}, 415: {"description": "UNSUPPORTED_FILE_TYPE"}},
)
@streams_body("multipart/form-data")  # JSON bodies keep the service-wide cap
async def create_job(
    request: Request, principal: Writer, session: SessionDep, jobs: JobsDep, storage: StorageDep
) -> JobRead:
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        declared = request.headers.get("content-length")
        limit = jobs.plan.max_upload_bytes * MAX_FILES_PER_JOB + MULTIPART_OVERHEAD
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(jobs.plan.max_upload_bytes)
        # The upload may take minutes: end the request's transaction (auth and plan reads) first, so
        # no connection sits idle in a transaction and no row lock is held while bytes trickle in.
        await commit(session)
        job = await service.create_from_multipart(session, jobs, storage, principal, content_type, request.stream())
        return _read(job)
    body = await request.body()
    try:
        spec = JobCreate.model_validate_json(body)
    except ValidationError as exc:  # rendered exactly as FastAPI's own body validation is
        raise validation_error(RequestValidationError(exc.errors(include_url=False))) from None
    [job] = await service.create_jobs(session, jobs, principal, [spec], batch=False)
    return _read(job)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=JobBatchRead,
    summary="Create up to 100 jobs at once",
    description="Validated as a whole and created in one transaction: either every job is created or none "
    "(the error names each failing job as `jobs.<index>.<field>`).",
)
async def create_batch(body: JobBatchCreate, principal: Writer, session: SessionDep, jobs: JobsDep) -> JobBatchRead:
    created = await service.create_jobs(session, jobs, principal, body.jobs, batch=True)
    return JobBatchRead(data=[_read(job) for job in created])


@router.get("", response_model=Page[JobRead], summary="List jobs", description="Newest first.")
async def list_jobs(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    job_status: Annotated[JobStatus | None, Query(alias="status", description="Only jobs in this status.")] = None,
    agent_id: Annotated[
        str | None, Query(max_length=32, pattern=r"^[a-z0-9-]+$", description="Only this agent's jobs.")
    ] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="Only jobs created after this moment (ISO 8601 with a timezone).")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="Only jobs created before this moment (ISO 8601 with a timezone).")
    ] = None,
) -> Page[JobRead]:
    stmt = JobRepository(session, principal.organization_id, principal.livemode).select()
    if job_status is not None:
        stmt = stmt.where(Job.status == job_status)
    if agent_id is not None:
        stmt = stmt.where(Job.agent_id == agent_id)
    stmt = created_between(stmt, Job.created_at, created_after, created_before)
    rows, cursor = await paginate(session, stmt, page, Job.created_at, Job.id)
    return Page(data=[_read(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


async def _wait_for_final(
    session: AsyncSession, redis: Redis, principal: Principal, job_id: str, seconds: float
) -> Job:
    """The job once final, or as it is after `seconds`. Woken by the job's pub/sub announcement."""
    organization_id, livemode = principal.organization_id, principal.livemode
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(lifecycle.final_channel(job_id))  # before reading: no announcement is missed
        job = await service.find_job(session, organization_id, livemode, job_id)
        if lifecycle.is_final(job):
            return job
        await session.commit()  # hand the connection back to the pool while waiting
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                break
    session.expunge_all()  # read the job afresh, not from the identity map
    return await service.find_job(session, organization_id, livemode, job_id)


@router.get(
    "/{job_id}",
    response_model=JobRead,
    summary="Get a job (optionally waiting for it to finish)",
    description="With `wait=N` (up to 60 seconds) the response comes as soon as the job reaches a final "
    "state (completed, failed, dead_letter, cancelled), or after N seconds with the job as it is then.",
)
async def get_job(
    job_id: str,
    principal: Reader,
    session: SessionDep,
    redis: RedisDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for a final state.")] = 0,
) -> JobRead:
    if wait > 0:
        with contextlib.suppress(TimeoutError):
            return _read(await _wait_for_final(session, redis, principal, job_id, wait))
    return _read(await service.get_job(session, principal, job_id))


_REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# The renderings besides JSON (whose schema is JobOutput): text, or binary (PDF).
_OUTPUT_CONTENT = {
    f.media_type: {"schema": {"type": "string"} | ({} if f.charset else {"format": "binary"})}
    for f in FORMATS.values()
    if f.name != "json"
}


@router.get(
    "/{job_id}/output",
    response_model=JobOutput,
    summary="Get a completed job's output",
    description="JSON by default: `{job_id, agent_id, status, content, finished_at}` with the agent's output as "
    "`content`. `format` (or, without it, `Accept`) asks for another rendering of the same output, each "
    "agent offering its own (listed as `output_formats` in `GET /v1/agents/{id}/config`): maya `markdown` "
    "(text/markdown) and `text` (text/plain); jordan `report`, an HTML analytics report (text/html); sam "
    "`html` (text/html) and `pdf` (application/pdf), the audit report; taylor `csv` (text/csv, RFC 4180, one "
    "row per field or line item). `format` wins over `Accept`; `Accept: */*` or `application/json` is JSON. "
    "A format the agent does not offer is 422 naming its formats; a job not yet completed is 409. "
    "A rendering is made on the first download and stored; later downloads return the same bytes.",
    responses={
        200: {"description": "The output, in the format asked for.", "content": _OUTPUT_CONTENT},
        **platform_errors(409),
    },
)
async def get_output(
    job_id: str,
    principal: Reader,
    session: SessionDep,
    response: Response,
    output_format: Annotated[
        str | None,
        Query(
            alias="format",
            max_length=16,
            description="json, markdown, text, report, html, pdf or csv, as the job's agent offers.",
            examples=["pdf"],
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    job = await service.get_job(session, principal, job_id)
    if job.status != JobStatus.COMPLETED or job.output_data is None:
        raise service.JobNotCompleted(
            f"The job is {job.status}; its output exists once it is completed.", details={"status": job.status}
        )
    agent = get_agent(job.agent_id)  # None: an agent no longer served, whose jobs keep their JSON output
    offered = agent.output_formats if agent is not None else ("json",)
    chosen = outputs.choose(job.agent_id, offered, output_format, accept)
    response.headers["Vary"] = "Accept"
    if chosen.name == "json":
        return JobOutput(
            job_id=job.id,
            agent_id=job.agent_id,
            status=JobStatus(job.status),
            content=job.output_data,
            finished_at=job.finished_at,
        )
    assert agent is not None
    stored = await outputs.rendered(session, agent, job, chosen)
    headers = {"Vary": "Accept", "Content-Disposition": f'inline; filename="{job.id}.{chosen.extension}"'}
    if chosen.media_type == "text/html":  # a report opened in a browser runs nothing, loads nothing
        headers["Content-Security-Policy"] = _REPORT_POLICY
    return Response(content=stored.content, media_type=stored.content_type, headers=headers)


async def _watched_job(job_id: str, principal: Reader, session: SessionDep) -> Job:
    """The job to stream, or 404 before the stream starts; the session's connection handed back."""
    job = await service.get_job(session, principal, job_id)
    await session.commit()
    return job


async def _cursor(
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The `id` of the last event received: the stream resumes after it (browsers' "
            "EventSource sends it when they reconnect).",
        ),
    ] = None,
) -> live.Cursor:
    return live.Cursor.parse(last_event_id)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    summary="Watch a job: its status changes and progress, live (Server-Sent Events)",
    description="A `text/event-stream` of the job's events, from its creation (or after `Last-Event-ID`) "
    "and then as they happen, from any API process:\n\n"
    "* `status`: `{from_status, to_status, attempt, reason, at}`, one per status change;\n"
    "* `progress`: `{progress, message, at}`, what the agent reports while it runs (`progress` 0 to 1);\n"
    "* `done`: the job in its final state (as `GET /v1/jobs/{id}` shows it); then the stream ends.\n\n"
    "Each event's `id` is a cursor: reconnect with it as `Last-Event-ID` to miss nothing. Comments "
    "(`: ping`) keep idle connections open; a stream also ends after 15 minutes (reconnect to go on).",
    responses={422: {"description": "`Last-Event-ID` is not an id this stream sent."}},
)
async def job_events(
    request: Request,
    job: Annotated[Job, Depends(_watched_job)],
    cursor: Annotated[live.Cursor, Depends(_cursor)],
) -> AsyncIterator[ServerSentEvent]:
    state = request.app.state
    async for event in live.events(state.sessionmaker, state.redis, job, cursor, _read):
        yield event


@router.get("/{job_id}/history", response_model=list[JobTransitionRead], summary="A job's status changes")
async def get_history(job_id: str, principal: Reader, session: SessionDep) -> list[JobTransitionRead]:
    job = await service.get_job(session, principal, job_id)
    return [JobTransitionRead.model_validate(t, from_attributes=True) for t in await service.history(session, job)]


@router.get(
    "/{job_id}/webhook-deliveries",
    response_model=Page[DeliveryDetail],
    summary="A job's notifications to its own webhook",
    description="Each notification sent (or to be sent) to the `webhook` the job named: its body, its status "
    "and every attempt (when, the status code, the first 2 KB of the answer or the error). Newest first. "
    "Signed with the secret of `GET /v1/webhooks/default/secret`; retried at 5 min, 30 min, 2 h and 6 h.",
)
async def list_job_webhook_deliveries(
    job_id: str, principal: Reader, session: SessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[DeliveryDetail]:
    job = await service.get_job(session, principal, job_id)
    stmt = WebhookDeliveryRepository(session, principal.organization_id).of_job(job.id)
    rows, cursor = await paginate(session, stmt, page, WebhookDelivery.created_at, WebhookDelivery.id)
    deliveries = WebhookDeliveryRepository(session, principal.organization_id)
    found = [webhook_endpoints.detail_of(r[0], job_payload(r[0]), await deliveries.attempts(r[0].id)) for r in rows]
    return Page(data=found, has_more=cursor is not None, next_cursor=cursor)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRead,
    summary="Cancel a job",
    description="From any non-final state. A running job is aborted at once and its partial output discarded. "
    "409 when the job has already finished.",
    responses=platform_errors(409),
)
async def cancel_job(job_id: str, principal: Writer, session: SessionDep, jobs: JobsDep) -> JobRead:
    return _read(await service.cancel(session, jobs, principal, job_id))


@router.post(
    "/{job_id}/retry",
    response_model=JobRead,
    summary="Retry a dead-lettered job",
    description="Queues a failed or dead-lettered job again, from its first attempt. 409 for any other status.",
    responses=platform_errors(409),
)
async def retry_job(job_id: str, principal: Writer, session: SessionDep, jobs: JobsDep) -> JobRead:
    return _read(await service.retry(session, jobs, principal, job_id))


@agents_router.get(
    "",
    response_model=list[AgentSummary],
    summary="List agents",
    description="Each agent with its state: `maintenance` means its new jobs are accepted and wait queued.",
)
async def list_agents(principal: Reader, session: SessionDep) -> list[AgentSummary]:
    under = await maintenance.states(session)
    summaries = []
    for agent in all_agents():
        state = maintenance.state_of(agent.id, under)
        status = "maintenance" if state.maintenance else "available"
        summaries.append(
            AgentSummary.model_validate({**agent.describe(), "status": status, "maintenance_reason": state.reason})
        )
    return summaries


@agents_router.get(
    "/{agent_id}/config",
    response_model=AgentConfig,
    summary="An agent's input and config schemas and file limits",
    description="Cache it: it changes only with a deploy.",
)
async def agent_config(agent_id: str, principal: Reader) -> AgentConfig:
    agent = get_agent(agent_id)
    if agent is None:
        raise NotFound("No agent with this id.")
    return AgentConfig.model_validate(agent.describe())
