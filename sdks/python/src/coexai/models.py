"""What the service answers, as dataclasses whose fields are the OpenAPI schemas' properties, one for one.

Each class names the schema it mirrors in `__schema__`; the SDK's tests compare the fields with the
service's OpenAPI document, so a field the service adds, drops or renames fails CI until the model
follows. Timestamps are parsed into aware `datetime`s; fields the service sends that a model does not
know (a newer service) are kept in `extra` rather than refused.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Union

T = TypeVar("T")

FINAL_STATUSES = frozenset({"completed", "failed", "dead_letter", "cancelled"})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list and isinstance(value, list):
        [item] = typing.get_args(kind)
        return [_convert(item, v) for v in value]
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
        return from_dict(kind, value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """An instance of the dataclass `cls` from a JSON object; unknown keys go to `extra`."""
    model: Any = cls
    hints = _hints(model)
    names = {f.name for f in dataclasses.fields(model)} - {"extra"}
    values = {name: _convert(hints[name], data.get(name)) for name in names if name in data}
    extra = {k: v for k, v in data.items() if k not in names}
    built: T = model(**values, extra=extra)
    return built


def model_fields(cls: type) -> set[str]:
    """The service's field names a model mirrors (what the OpenAPI check compares): its fields but
    `extra` and those the SDK adds itself (`__sdk_only__`)."""
    sdk_only: frozenset[str] = getattr(cls, "__sdk_only__", frozenset())
    return {f.name for f in dataclasses.fields(cls)} - {"extra"} - sdk_only


@dataclass
class JobError:
    __schema__: ClassVar[str] = "JobError"
    code: str
    message: str
    attempt: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Job:
    __schema__: ClassVar[str] = "JobRead"
    id: str
    agent_id: str
    status: str
    priority: int = 0
    input_data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    file_ids: list[str] = field(default_factory=list)
    output_data: dict[str, Any] | None = None
    error: JobError | None = None
    attempts: int = 0
    livemode: bool = True
    created_at: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status_reason: str | None = None
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass
class JobOutput:
    """`GET /v1/jobs/{id}/output`. `content` is the output (a dict for JSON; the rendered text or bytes
    when another `format` was asked for, on a service that renders formats); `format` says which."""

    __schema__: ClassVar[str] = "JobOutput"
    __sdk_only__: ClassVar[frozenset[str]] = frozenset({"format"})
    job_id: str
    agent_id: str
    status: str
    content: Any
    finished_at: datetime | None = None
    format: str = "json"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class JobTransition:
    __schema__: ClassVar[str] = "JobTransitionRead"
    from_status: str | None
    to_status: str
    attempt: int | None = None
    reason: str | None = None
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class File:
    __schema__: ClassVar[str] = "FileRead"
    id: str
    filename: str
    content_type: str
    size_bytes: int
    status: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    livemode: bool = True
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class UploadUrl:
    __schema__: ClassVar[str] = "UploadUrlResponse"
    upload_url: str
    file_id: str
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Agent:
    __schema__: ClassVar[str] = "AgentSummary"
    id: str
    name: str
    description: str
    accepted_file_types: list[str] = field(default_factory=list)
    max_file_bytes: int = 0
    status: str | None = None
    maintenance_reason: str | None = None
    output_formats: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class AgentConfig:
    __schema__: ClassVar[str] = "AgentConfig"
    id: str
    name: str
    description: str
    accepted_file_types: list[str] = field(default_factory=list)
    max_file_bytes: int = 0
    status: str | None = None
    maintenance_reason: str | None = None
    output_formats: list[str] = field(default_factory=list)
    input_schema: dict[str, Any] = field(default_factory=dict)
    config_schema: dict[str, Any] = field(default_factory=dict)
    max_files: int = 0
    time_limit_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Webhook:
    __schema__: ClassVar[str] = "WebhookCreated"  # WebhookRead and the one-time secret
    id: str
    url: str
    events: list[str] = field(default_factory=list)
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    ordering: str = "none"
    livemode: bool = True
    # "closed"; "open" after failed attempts in a row: deliveries wait until circuit_retry_at; "half_open".
    circuit_state: str = "closed"
    consecutive_failures: int = 0
    circuit_retry_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret: str | None = None  # only in the answer to a creation (WebhookCreated)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class WebhookDelivery:
    __schema__: ClassVar[str] = "DeliveryRead"
    id: str
    webhook_id: str
    event_type: str
    kind: str
    status: str
    event_id: str | None = None
    attempt_count: int = 0
    max_attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Event:
    """A stored event (`GET /v1/events`) or one received by a webhook (`webhooks.construct_event`): then
    `type` is the payload's `event`, `data` its `data`, and `webhook_id`/`timestamp` come along in `extra`."""

    __schema__: ClassVar[str] = "EventRead"
    id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    livemode: bool = True
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class ApiKey:
    __schema__: ClassVar[str] = "ApiKeyCreated"  # ApiKeyRead and the one-time key
    id: str
    name: str
    prefix: str
    mode: str
    scopes: list[str] = field(default_factory=list)
    allowed_ips: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    created_at: datetime | None = None
    created_by_id: str | None = None
    key: str | None = None  # the secret itself: only in the answer to a creation (ApiKeyCreated)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Organization:
    __schema__: ClassVar[str] = "OrganizationRead"
    id: str
    name: str
    slug: str
    role: str | None = None
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Member:
    __schema__: ClassVar[str] = "MemberRead"
    organization_id: str
    user_id: str
    email: str
    full_name: str
    role: str
    joined_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class User:
    __schema__: ClassVar[str] = "UserRead"
    id: str
    email: str
    full_name: str
    email_verified: bool = False
    is_staff: bool = False
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Me:
    """`GET /v1/users/me`: who is calling (a user, or an API key acting for one), where, and how."""

    __schema__: ClassVar[str] = "MeResponse"
    user: User | None
    organization: dict[str, Any] | None
    role: str | None
    auth: dict[str, Any]
    identities: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class LicenseSession:
    """A leased seat (licensing surface: `acquire/` and `heartbeat/`)."""

    __schema__: ClassVar[str] = "SessionRead"
    session_id: str
    license_key: str
    expires_at: datetime | None
    is_active: bool
    seats_remaining: int
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


# Every model with the schema it mirrors (what tests/test_sdk_openapi.py walks).
MODELS: tuple[type, ...] = (
    JobError,
    Job,
    JobOutput,
    JobTransition,
    File,
    UploadUrl,
    Agent,
    AgentConfig,
    Webhook,
    WebhookDelivery,
    Event,
    ApiKey,
    Organization,
    Member,
    User,
    Me,
    LicenseSession,
)
