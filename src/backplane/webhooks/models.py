"""Webhook endpoints (`wh_…`), their deliveries (`whd_…`: one event to one endpoint) and every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backplane.core.crypto import Encryptor
from backplane.core.db import Base, IdMixin, TimestampMixin, utcnow
from backplane.events.service import OPT_IN_TYPES

ORDERINGS = ("none", "per_resource")


class WebhookEndpoint(TimestampMixin, Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_organization_id_created_at", "organization_id", "created_at"),
        CheckConstraint("ordering IN ('none', 'per_resource')", name="ordering_known"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # wh_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    livemode: Mapped[bool]
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))  # event types, or ["*"]
    description: Mapped[str | None] = mapped_column(String(500))
    # The signing secret `whsec_<base64>` (the HMAC key of X-CoExAI-Signature as text and of
    # webhook-signature decoded), encrypted with ENCRYPTION_KEYS (a Fernet token): read it through
    # `signing_secrets`, which only signing calls.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # The secret a rotation replaced, encrypted alike: it still signs (besides the current one) until
    # `previous_secret_expires_at`.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    # Why and when the platform turned it off (410 Gone, failing for days); cleared when enabled again.
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # The first failed attempt since the last successful one (test pings aside); None while healthy.
    failing_since: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
    # `per_resource`: the events about one resource (a job, a license, ...) reach this endpoint one after
    # another in creation order (webhooks/ordering.py); `none`: each as soon as it can.
    ordering: Mapped[str] = mapped_column(String(16), default="none", server_default="none")

    @property
    def ordered(self) -> bool:
        return self.ordering == "per_resource"

    def set_secret(self, secret: str, encryptor: Encryptor, *, previous_expires_at: datetime | None = None) -> None:
        """A new signing secret; with `previous_expires_at`, the one it replaces signs too until then."""
        if previous_expires_at is not None:
            self.previous_secret_encrypted = self.secret_encrypted
            self.previous_secret_expires_at = previous_expires_at
        self.secret_encrypted = encryptor.encrypt_text(secret)

    def signing_secrets(self, encryptor: Encryptor, now: datetime) -> list[str]:
        """The secrets, decrypted, that sign a request sent at `now`: the current one first."""
        secrets = [encryptor.decrypt_text(self.secret_encrypted)]
        previous, until = self.previous_secret_encrypted, self.previous_secret_expires_at
        if previous and until and now < until:
            secrets.append(encryptor.decrypt_text(previous))
        return secrets

    def wants(self, event_type: str) -> bool:
        """`*` is every type but the opt-in ones (seat.*), which an endpoint receives only by name."""
        return event_type in self.events or ("*" in self.events and event_type not in OPT_IN_TYPES)


class WebhookDelivery(TimestampMixin, Base):
    """One event sent (or to be sent) to one endpoint, with its retry state.

    kind `event`: made by the dispatcher, retried on the schedule; `redelivery`: asked for by a user,
    one attempt; `test`: a `webhook.test` ping (no event row), one attempt; `recovery`: made by a
    recovery; `job`: a job's own notification to the job's `webhook` URL (no endpoint, no event row:
    `url` and `payload` say what to send), retried on the schedule.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        CheckConstraint("kind IN ('event', 'redelivery', 'test', 'recovery', 'job')", name="kind_known"),
        CheckConstraint("(kind = 'job') = (endpoint_id IS NULL)", name="target_known"),
        Index("ix_webhook_deliveries_job_id", "job_id"),
        # An ordered endpoint's deliveries still to make, per resource (webhooks/ordering.py).
        Index(
            "ix_webhook_deliveries_resource_pending",
            "endpoint_id",
            "resource_id",
            postgresql_where=text("status = 'pending' AND resource_id IS NOT NULL"),
        ),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
        # The dispatcher makes at most one automatic delivery of an event to an endpoint.
        Index(
            "uq_webhook_deliveries_endpoint_event",
            "endpoint_id",
            "event_id",
            unique=True,
            postgresql_where=text("kind = 'event'"),
        ),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        # A recovery sends each event once.
        Index(
            "uq_webhook_deliveries_recovery_event",
            "recovery_id",
            "event_id",
            unique=True,
            postgresql_where=text("recovery_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # whd_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool]
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    max_attempts: Mapped[int] = mapped_column(SmallInteger)
    # Retries are due at fixed offsets from this: the first attempt's time, moved later by however much
    # a receiver's Retry-After stretched a wait (so the waits after it keep their length).
    schedule_start_at: Mapped[datetime | None]
    # When the next attempt is due (pending only); while an attempt runs, the end of its lease.
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    # The trace its attempts continue: the event's, or the request's that asked for a redelivery or a
    # ping (core/tracing.py; NULL without tracing).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # kind `recovery`: the recovery (`POST /v1/webhooks/{id}/recover`) that made it.
    recovery_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_recoveries.id", ondelete="CASCADE"))
    # What the event is about (`job:job_…`, `license:<uuid>`, ...; events/resources.py): an endpoint with
    # `ordering: per_resource` receives one resource's events one after another. NULL: about no one thing.
    resource_id: Mapped[str | None] = mapped_column(String(100))
    # kind `job`: the job whose `webhook` this notifies, the URL it had, and the `data` to send.
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    url: Mapped[str | None] = mapped_column(String(2048))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class JobWebhookSecret(Base):
    """The secret that signs the deliveries of jobs' own webhooks (`webhook` on `POST /v1/jobs`), one per
    organization and mode, made when first needed; `GET /v1/webhooks/default/secret` shows it. Encrypted
    like an endpoint's secret."""

    __tablename__ = "job_webhook_secrets"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)


class WebhookAttempt(IdMixin, Base):
    """One HTTP request of a delivery and what came back (or why nothing did)."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(SmallInteger)
    attempted_at: Mapped[datetime]
    succeeded: Mapped[bool]
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)  # the first 2 KB, as text
    error: Mapped[str | None] = mapped_column(String(500))  # no response: refused, timed out, blocked
    duration_ms: Mapped[int]


class WebhookRecovery(TimestampMixin, Base):
    """`POST /v1/webhooks/{id}/recover`: one background operation (`whr_…`) that sends again, once each and
    in order, every event of a window that the endpoint did not receive (webhooks/recovery.py)."""

    __tablename__ = "webhook_recoveries"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'stopped')", name="status_known"),
        Index("ix_webhook_recoveries_endpoint_id_created_at", "endpoint_id", "created_at"),
        # One recovery at a time per endpoint: two would send the same events.
        Index(
            "uq_webhook_recoveries_running",
            "endpoint_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # whr_…
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    since: Mapped[datetime]
    until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")
    events_total: Mapped[int | None]  # counted when it starts
    events_sent: Mapped[int] = mapped_column(default=0)  # first attempts made
    stopped_reason: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None]
