from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from backplane.core.fields import ShortName

KeyScope = Literal["read", "write", "admin"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortName = Field(examples=["CI pipeline"])
    mode: Literal["live", "test"] = Field(
        default="live",
        description="Test-mode keys create test-mode resources that are never billed.",
    )
    scopes: list[KeyScope] = Field(
        default_factory=lambda: list[KeyScope](["read", "write"]),
        min_length=1,
        max_length=3,
        description="`read` for GET, `write` for changes, `admin` for keys, members, webhooks and billing.",
    )
    expires_at: AwareDatetime | None = Field(default=None, description="Default: never expires.")
    allowed_ips: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="CIDRs (or single addresses) the key may be used from; empty allows any address.",
        examples=[["203.0.113.0/24", "2001:db8::1"]],
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[str]) -> list[str]:
        return sorted(set(scopes), key=["read", "write", "admin"].index)

    @field_validator("allowed_ips")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        normalized = []
        for value in values:
            try:
                normalized.append(str(ipaddress.ip_network(value.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"'{value[:64]}' is not an IP address or CIDR block.") from None
        return normalized


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's mode prefix and the first 8 characters of its secret part.")
    mode: Literal["live", "test"]
    scopes: list[str]
    allowed_ips: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: Literal["revoked", "creator_left", "creator_deactivated"] | None = Field(
        description="Why the key stopped working: revoked by an admin, or its creator left the organization "
        "(or was removed) or was deactivated, taking their keys with them."
    )
    created_at: datetime
    created_by_id: uuid.UUID | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key. It is shown only once: store it now.")
