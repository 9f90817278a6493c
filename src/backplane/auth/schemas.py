from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backplane.core.fields import Email, Name, NewPassword


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=4096)


# --- licensing surface -------------------------------------------------------------------------


class RegisterRequest(_Body):
    email: Email = Field(examples=["dev@example.com"])
    password: NewPassword = Field(examples=["SecurePass123!"])
    full_name: Name = Field(examples=["Developer"])
    company_name: Name = Field(examples=["My Company"])


class TokenRequest(_Body):
    email: Email = Field(examples=["dev@example.com"])
    password: str = Field(max_length=1024, examples=["SecurePass123!"])


class TokenPair(BaseModel):
    access: str = Field(description="Access JWT, valid for ACCESS_TOKEN_TTL_SECONDS (15 minutes).")
    refresh: str = Field(description="Refresh JWT, valid for REFRESH_TOKEN_TTL_SECONDS (7 days); not rotated.")


class RefreshRequest(_Body):
    refresh: str = Field(max_length=4096)


class AccessToken(BaseModel):
    access: str


class EmailRequest(_Body):
    email: Email = Field(examples=["user@example.com"])


class ResetPasswordRequest(_Body):
    token: str = Field(min_length=1, max_length=256)
    new_password: NewPassword = Field(examples=["NewSecurePass123!"])


class Message(BaseModel):
    message: str


class OrganizationBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    email_verified: bool
    is_staff: bool = Field(default=False, description="Platform staff: the operator's people.")
    created_at: datetime


class RegisterResponse(BaseModel):
    user: UserRead
    organization: OrganizationBrief
    message: str


# --- platform surface --------------------------------------------------------------------------


class LoginRequest(TokenRequest):
    """`POST /v1/auth/login`: the same credentials as the licensing surface's `auth/token/`."""


class PlatformTokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.", examples=[900])


class LoginResponse(BaseModel):
    user: UserRead
    tokens: PlatformTokens


class PlatformRefreshRequest(_Body):
    refresh_token: str = Field(max_length=4096)


class TokensResponse(BaseModel):
    tokens: PlatformTokens


class MeAuth(BaseModel):
    type: Literal["jwt", "api_key"]
    scopes: list[str]
    livemode: bool
    api_key_id: uuid.UUID | None = None


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: Literal["google", "microsoft", "github"]
    email: str = Field(description="The address the provider reported at the last sign-in.")
    created_at: datetime


class MeResponse(BaseModel):
    user: UserRead | None = Field(description="The signed-in user; for an API key, the user who created it.")
    organization: OrganizationBrief | None
    role: str | None
    auth: MeAuth
    identities: list[IdentityRead] = Field(
        default_factory=list,
        description="Provider accounts (Google, Microsoft, GitHub) that sign this user in; "
        "empty for API keys, which never see a user's sign-in methods.",
    )


class UserUpdate(_Body):
    full_name: Name
