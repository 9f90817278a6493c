from __future__ import annotations

import ipaddress
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from backplane.core.fields import ShortName

TierName = Literal["free", "pro", "enterprise"]
LicenseStatus = Literal["active", "suspended", "inactive", "expired"]
ValidationCode = Literal["VALID", "NOT_FOUND", "MALFORMED", "SUSPENDED", "INACTIVE", "EXPIRED"]
MAX_METADATA_BYTES = 16_384


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ValueError(f"Metadata must be at most {MAX_METADATA_BYTES} bytes of JSON.")
    return value


class LicenseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierName = Field(examples=["pro"])
    seats: int = Field(
        ge=1, le=100_000, examples=[5], description="Concurrent sessions allowed (test mode: at most 5)."
    )
    expiry_date: AwareDatetime | None = Field(
        default=None, description="Default: never expires (test mode: at most, and by default, 30 days)."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"customer": "Acme"}])
    organization_id: uuid.UUID | None = Field(
        default=None, description="Platform staff only: the organization the license is for."
    )

    _check_metadata = field_validator("metadata")(_metadata)


class LicenseUpdate(BaseModel):
    """Customer admins: `suspended` and `metadata` (and, on test licenses, seats, expiry and activation
    within the test limits). Platform staff: everything."""

    model_config = ConfigDict(extra="forbid")

    tier: TierName | None = Field(default=None, description="Platform staff only.")
    seats: int | None = Field(default=None, ge=1, le=100_000)
    suspended: bool | None = Field(default=None, description="true suspends the license, false reactivates it.")
    is_active: bool | None = None
    expiry_date: AwareDatetime | None = None
    metadata: dict[str, Any] | None = None

    _check_metadata = field_validator("metadata")(lambda v: v if v is None else _metadata(v))


class LicenseRead(BaseModel):
    id: uuid.UUID
    key_string: str = Field(examples=["PROD-2026-7KQD-M3XA-9TWC-HN4R"])
    tier: str
    seats: int
    is_active: bool
    status: LicenseStatus
    expiry_date: datetime | None
    metadata: dict[str, Any]
    organization: uuid.UUID
    livemode: bool
    created_at: datetime
    updated_at: datetime
    seats_in_use: int | None = Field(default=None, description="Live sessions now.", examples=[2])


class LicenseList(BaseModel):
    count: int
    licenses: list[LicenseRead]
    next: str | None
    previous: str | None


class ValidateRequest(BaseModel):
    key_string: str = Field(max_length=256, examples=["PROD-2026-7KQD-M3XA-9TWC-HN4R"])


class PublicLicense(BaseModel):
    key_string: str
    tier: str
    seats: int
    is_active: bool
    expiry_date: datetime | None
    livemode: bool = Field(description="false: a test-mode license; refuse it in production builds.")


class ValidateResponse(BaseModel):
    valid: bool
    code: ValidationCode
    reason: str | None = None
    license: PublicLicense | None = None


class AcquireRequest(BaseModel):
    license_key: str = Field(max_length=256, examples=["PROD-2026-7KQD-M3XA-9TWC-HN4R"])
    hardware_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$", examples=["abc123def456"])
    ip_address: str | None = Field(default=None, max_length=64, examples=["192.168.1.100"])
    client_version: ShortName | None = Field(default=None, examples=["1.0.0"])

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError("Enter a valid IPv4 or IPv6 address.") from None


class SessionRead(BaseModel):
    session_id: uuid.UUID
    license_key: str
    expires_at: datetime = Field(description="When the seat frees itself unless heartbeated.")
    is_active: bool
    seats_remaining: int


class ReleaseResponse(BaseModel):
    message: str
    seats_remaining: int


class LiveSessionRead(BaseModel):
    session_id: uuid.UUID
    hardware_id: str
    ip_address: str | None = Field(
        default=None, description="The IP address the machine reported when it acquired the seat (or null)."
    )
    client_version: str | None = Field(
        default=None, description="The client version the machine reported when it acquired the seat (or null)."
    )
    acquired_at: datetime | None
    last_heartbeat_at: datetime | None
    heartbeats: int
    expires_at: datetime


class LiveSessionList(BaseModel):
    count: int
    seats: int
    sessions: list[LiveSessionRead]
