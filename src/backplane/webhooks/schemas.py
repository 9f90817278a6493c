from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, StringConstraints, field_validator

from backplane.core.fields import NoNul
from backplane.events.service import OPT_IN_TYPES, EventType

Subscription = Literal[EventType, "*"]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NoNul]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048), NoNul]
DeliveryStatus = Literal["pending", "succeeded", "failed"]
Ordering = Literal["none", "per_resource"]
CircuitState = Literal["closed", "open", "half_open"]

_EVENTS_DESCRIPTION = (
    'Event types to receive; `["*"]` receives every type, including ones added later, except the seat events '
    "(`seat.acquired`, `seat.released`, `seat.expired`: one per seat session, so many), which an endpoint "
    'receives only when it names them, e.g. `["*", "seat.acquired"]`.'
)
_URL_EXAMPLE = "https://your-app.com/webhooks/coexai"
_EVENTS_EXAMPLE: list[JsonValue] = ["job.completed", "job.failed", "subscription.updated"]
_ORDERING_DESCRIPTION = (
    "`per_resource`: the events about one resource (one job, license, subscription, API key, file, member "
    "or seat session) reach this webhook one after another, in the order they were created: an event is not "
    "sent while an earlier event about the same resource is still being delivered or retried (one that failed "
    "for good lets the next one go). Events about different resources are not held back by each other. "
    "`none` (default): each event is sent as soon as it can be, in no guaranteed order."
)


def _normalize_events(events: list[str]) -> list[str]:
    """`*` stands for every type except the opt-in seat events, which stay listed beside it."""
    unique = list(dict.fromkeys(events))
    return ["*", *(e for e in unique if e in OPT_IN_TYPES)] if "*" in unique else unique


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": _URL_EXAMPLE, "events": _EVENTS_EXAMPLE, "description": "Production webhook"},
                {"url": _URL_EXAMPLE, "events": ["*"], "ordering": "per_resource"},
            ]
        },
    )

    url: Url = Field(description="Where to POST events: http(s), publicly reachable.")
    events: list[Subscription] = Field(min_length=1, max_length=20, description=_EVENTS_DESCRIPTION)
    description: Description | None = None
    enabled: bool = Field(default=True, description="A disabled webhook receives nothing.")
    ordering: Ordering = Field(default="none", description=_ORDERING_DESCRIPTION)

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str]) -> list[str]:
        return _normalize_events(events)


class WebhookUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"events": ["*"]}, {"enabled": False}, {"ordering": "per_resource"}]},
    )

    url: Url | None = None
    events: list[Subscription] | None = Field(default=None, min_length=1, max_length=20)
    description: Description | None = None
    enabled: bool | None = Field(
        default=None,
        description="`false` turns the webhook off; `true` turns it on again and clears `disabled_reason`.",
    )
    ordering: Ordering | None = Field(default=None, description=_ORDERING_DESCRIPTION)

    @field_validator("url", "events", "enabled", "ordering")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("Must not be null; leave the field out to keep it.")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str]) -> list[str]:
        return _normalize_events(events)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["wh_9c2e4f6a8b1d3c5e7f9a0b2c"])
    url: str = Field(examples=[_URL_EXAMPLE])
    events: list[str] = Field(examples=[_EVENTS_EXAMPLE])
    description: str | None = Field(examples=["Production webhook"])
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the platform turned the webhook off: the endpoint answered 410 Gone, or every attempt "
        "failed for 5 days. Null while enabled or when an admin disabled it.",
        examples=[None],
    )
    disabled_at: datetime | None = Field(description="When the platform turned it off; null otherwise.")
    livemode: bool = Field(description="Test-mode webhooks receive the events of test-mode resources only.")
    ordering: Ordering = Field(description=_ORDERING_DESCRIPTION, examples=["none"])
    circuit_state: CircuitState = Field(
        default="closed",
        description="`closed`: deliveries are sent as they come. `open`: the last "
        "attempts in a row all failed (5 by default), so the webhook's deliveries wait, unattempted and "
        "uncounted, until `circuit_retry_at`; then one of them is sent alone as a probe (`half_open`). Its "
        "success closes the circuit and the deliveries that waited go out, oldest first (in order per resource "
        "with `ordering: per_resource`); its failure opens it again for twice as long (at most 5 min). Retries "
        "keep their schedule, counted from each delivery's first attempt; a delivery is never dropped by it.",
        examples=["closed"],
    )
    consecutive_failures: int = Field(
        default=0, description="Failed attempts since the last successful one.", examples=[0]
    )
    circuit_retry_at: datetime | None = Field(
        default=None,
        description="While the circuit is `open`: when the probe attempt is due; when `half_open`: when the "
        "back-off ended. Null while `closed`. A delivery waiting for it keeps the `next_attempt_at` it had, "
        "which may pass: it is attempted once the circuit closes.",
        examples=[None],
    )
    created_at: datetime
    updated_at: datetime


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="Signs every delivery: `X-CoExAI-Signature` is the hex HMAC-SHA256 of the raw body keyed with "
        "this string; `webhook-signature` follows Standard Webhooks with it. Shown only here: store it now.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookCreated(WebhookRead, WebhookSecret):
    """A new webhook, with the secret that signs its deliveries (shown this once)."""


class SecretRotated(WebhookSecret):
    """The new secret (shown this once) and until when the old one still signs too."""

    previous_secret_expires_at: datetime = Field(
        description="Until then each delivery carries two signatures: `webhook-signature` holds one `v1,…` value "
        "per secret, and `X-CoExAI-Signature` (new secret) comes with `X-CoExAI-Signature-Previous` (old secret)."
    )


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int = Field(examples=[1])
    attempted_at: datetime
    succeeded: bool
    status_code: int | None = Field(description="The endpoint's HTTP status; null when none came back.")
    response_body: str | None = Field(description="The first 2 KB of the endpoint's answer.")
    error: str | None = Field(examples=["The endpoint answered HTTP 500; only 2xx counts as delivered."])
    duration_ms: int


class DeliveryRead(BaseModel):
    id: str = Field(examples=["whd_5b7d9f1a3c5e7a9b1d3f5a7c"])
    webhook_id: str | None = Field(description="Null for a job's own webhook (kind `job`).")
    event_id: str | None = Field(description="Null for `webhook.test` pings and a job's own notifications.")
    event_type: str = Field(examples=["job.completed"])
    kind: Literal["event", "redelivery", "test", "recovery", "job"] = Field(
        description="`event`: sent on its own, retried at 5 min, 30 min, 2 h and 6 h; `redelivery` and "
        "`test`: one attempt, asked for through the API; `recovery`: made by a recovery "
        "(`POST /v1/webhooks/{id}/recover`), retried like `event`; `job`: a job's notification to its own "
        "`webhook`, retried like `event`."
    )
    status: DeliveryStatus
    attempt_count: int
    max_attempts: int
    next_attempt_at: datetime | None = Field(
        description="When the next attempt is due. Null once it is over, and while `pending` on a webhook with "
        "`ordering: per_resource`: it waits for an earlier event about the same resource to be delivered. "
        "While the webhook's circuit is open (`circuit_state`), a pending delivery waits past this time, "
        "until the circuit closes."
    )
    last_attempt_at: datetime | None
    last_status_code: int | None
    created_at: datetime


class JobWebhookSecretRead(BaseModel):
    secret: str = Field(
        description="Signs every notification to a job's own `webhook` (`POST /v1/jobs` with `webhook`) in this "
        "mode: `X-CoExAI-Signature` is the hex HMAC-SHA256 of the raw body keyed with this string, and "
        "`webhook-signature` follows Standard Webhooks with it. One per organization and mode (test-mode keys "
        "read the test-mode one), made on first use.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class DeliveryDetail(DeliveryRead):
    payload: dict[str, Any] = Field(description="The JSON body every attempt sends.")
    attempts: list[AttemptRead]


class RecoveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="The window's start: events created at or after it.")
    until: AwareDatetime | None = Field(default=None, description="The window's end (excluded); default: now.")


class RecoveryRead(BaseModel):
    id: str = Field(examples=["whr_2c4e6a8b0d1f3a5c7e9b1d3f"])
    webhook_id: str
    since: datetime
    until: datetime
    status: Literal["running", "completed", "stopped"] = Field(
        description="`stopped`: a first attempt failed (see `stopped_reason`); the events after it were not sent."
    )
    stopped_reason: str | None
    events_total: int | None = Field(description="Events the window had to send; null until the operation starts.")
    events_sent: int = Field(description="First attempts made so far, in order.")
    deliveries: dict[str, int] = Field(
        description="The recovery's deliveries by status (`pending` ones are retried on the schedule).",
        examples=[{"pending": 0, "succeeded": 42, "failed": 0}],
    )
    created_at: datetime
    finished_at: datetime | None
