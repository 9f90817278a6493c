from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backplane.core.fields import Email, Name

RoleName = Literal["owner", "admin", "member", "viewer"]


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(examples=["Acme Inc"])


class OrganizationUpdate(OrganizationCreate):
    """A rename: the same field as at creation."""


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    role: RoleName | None = Field(description="The caller's role in this organization.")
    created_at: datetime


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(examples=["colleague@example.com"])
    role: RoleName = Field(default="member", description="Only an owner may invite an owner.")


class InvitationRead(BaseModel):
    id: str = Field(examples=["inv_4f1c2a9e0b7d3c5a1e2f3a4b"])
    organization_id: uuid.UUID
    email: str
    role: RoleName
    status: Literal["pending", "accepted", "revoked", "expired"]
    expires_at: datetime
    created_at: datetime


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: RoleName


class MemberRead(BaseModel):
    organization_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    role: RoleName
    joined_at: datetime
