from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from backplane.jobs.models import JobStatus

MAX_BATCH = 100
MAX_FILES_PER_JOB = 10


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
                }
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
