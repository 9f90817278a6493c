from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backplane.core.fields import NoNul
from backplane.jobs.models import JobStatus

MAX_BATCH = 100
MAX_FILES_PER_JOB = 10

WebhookNotification = Literal["start", "progress", "completed"]
WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048), NoNul]
_WEBHOOK_DESCRIPTION = (
    "A URL of yours that this job's notifications are POSTed to (besides the organization's webhooks): https, "
    "publicly reachable (the rules of `POST /v1/webhooks`). Signed like every webhook (`X-CoExAI-Signature` "
    "and the Standard Webhooks headers) with the organization's job-webhook secret, "
    "`GET /v1/webhooks/default/secret`; retried at 5 min, 30 min, 2 h and 6 h; the attempts are at "
    "`GET /v1/jobs/{id}/webhook-deliveries`."
)
_FILTER_DESCRIPTION = (
    "Which notifications `webhook` gets: `start` (`job.started`, when its first attempt starts running), "
    "`progress` (`job.progress`, when the agent reports progress; at most one per second per job) and "
    "`completed` (`job.completed`, `job.failed` or `job.cancelled`, once it reaches a final state). "
    "Default, with a `webhook`: all three. Only with a `webhook`."
)


class JobCreate(BaseModel):
    """A job to run. `agentId`, `input`/`inputData` and `fileIds` are accepted as the SDKs send them."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "agent_id": "maya",
                    "input_data": {
                        "source_type": "text",
                        "content": "Your content here...",
                        "target_formats": ["twitter_thread", "linkedin_post"],
                    },
                    "config": {},
                    "priority": 0,
                },
                {
                    "agent_id": "taylor",
                    "file_ids": ["file_8a1c3e5f7b9d2f4a6c8e0b1d"],
                    "webhook": "https://your-app.com/webhooks/jobs",
                    "webhook_events_filter": ["start", "completed"],
                },
            ]
        },
    )

    agent_id: str = Field(
        min_length=1,
        max_length=32,
        validation_alias=AliasChoices("agent_id", "agentId"),
        description="`maya`, `jordan`, `sam` or `taylor` (see `GET /v1/agents`).",
    )
    input_data: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("input_data", "inputData", "input"),
        description="The agent's input; its schema is in `GET /v1/agents/{id}/config`.",
    )
    config: dict[str, Any] = Field(default_factory=dict, description="The agent's options.")
    file_ids: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILES_PER_JOB,
        validation_alias=AliasChoices("file_ids", "fileIds"),
        description="Ready files of this organization (`file_…`).",
    )
    priority: int = Field(
        default=0, ge=-100, le=100, strict=True, description="Higher runs first among queued jobs (-100 to 100)."
    )
    webhook: WebhookUrl | None = Field(default=None, description=_WEBHOOK_DESCRIPTION)
    webhook_events_filter: list[WebhookNotification] | None = Field(
        default=None, min_length=1, max_length=3, description=_FILTER_DESCRIPTION
    )

    @field_validator("webhook_events_filter")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [n for n in ("start", "progress", "completed") if n in value]


class JobBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreate] = Field(min_length=1, max_length=MAX_BATCH, description="Up to 100 jobs, all or none.")


class JobError(BaseModel):
    code: str = Field(examples=["AGENT_ERROR"])
    message: str
    attempt: int | None = None


class JobRead(BaseModel):
    id: str = Field(examples=["job_3f9c2a7b1d4e5f60718293a4"])
    agent_id: str
    status: JobStatus
    priority: int
    input_data: dict[str, Any]
    config: dict[str, Any]
    file_ids: list[str]
    output_data: dict[str, Any] | None
    error: JobError | None
    attempts: int
    livemode: bool
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    status_reason: str | None = Field(
        default=None,
        description="Why a queued job is not running yet, when there is a reason other than its turn: "
        "its agent under maintenance.",
        examples=["The agent maya is under maintenance: upgrading the transcription model"],
    )
    webhook: str | None = Field(
        default=None, description="The job's own webhook URL, if it named one.", examples=[None]
    )
    webhook_events_filter: list[WebhookNotification] | None = Field(
        default=None,
        description="The notifications its `webhook` gets (null without a webhook).",
        examples=[["start", "progress", "completed"]],
    )


class JobBatchRead(BaseModel):
    data: list[JobRead]


class JobOutput(BaseModel):
    job_id: str
    agent_id: str
    status: JobStatus
    content: dict[str, Any] = Field(description="The agent's output (the job's `output_data`).")
    finished_at: datetime | None


class JobTransitionRead(BaseModel):
    from_status: JobStatus | None
    to_status: JobStatus
    attempt: int
    reason: str | None
    at: datetime


class AgentSummary(BaseModel):
    id: str
    name: str
    description: str
    accepted_file_types: list[str]
    max_file_bytes: int
    output_formats: list[str] = Field(
        description="What `GET /v1/jobs/{id}/output?format=` renders a completed job's output as.",
        examples=[["json", "html", "pdf"]],
    )
    status: Literal["available", "maintenance"] = Field(
        default="available",
        description="`maintenance`: new jobs are accepted and wait queued until it ends (`maintenance_reason`).",
    )
    maintenance_reason: str | None = None


class AgentConfig(AgentSummary):
    input_schema: dict[str, Any]
    config_schema: dict[str, Any]
    max_files: int
    time_limit_seconds: float
