"""One way to authenticate for every protected route of both surfaces.

`Authorization: Bearer <access JWT | API key>`. The result is a `Principal`; the aliases at the
bottom require a scope (API keys) or the role that implies it (users).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backplane.api_keys.service import authenticate_key, is_api_key
from backplane.auth import revocation
from backplane.auth.principal import Principal, Scope, user_principal
from backplane.core.client_ip import client_ip
from backplane.core.config import Settings
from backplane.core.db import SessionDep
from backplane.core.errors import NotFound, Unauthorized
from backplane.core.redis import RedisDep
from backplane.core.security import InvalidToken, decode_token
from backplane.organizations.models import Role
from backplane.organizations.repository import MembershipRepository

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access JWT (from `/api/v1/auth/token/` or `/v1/auth/login`) or an API key "
    "(`coexai_live_…` / `coexai_test_…`).",
)

ORG_HEADER_DESCRIPTION = "For JWT callers: the organization to act in (default: your oldest membership)."


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(settings_of)]


async def get_principal(
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_organization_id: Annotated[str | None, Header(description=ORG_HEADER_DESCRIPTION)] = None,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Authentication credentials were not provided. Send `Authorization: Bearer <token>`.")
    token = credentials.credentials.strip()
    if is_api_key(token):
        return await authenticate_key(session, token, client_ip(request, request.app.state.trusted_proxies))
    try:
        claims = decode_token(token, "access", settings.secret_key)
    except InvalidToken as exc:
        expired = "expired" in str(exc).lower()
        raise Unauthorized("Access token has expired." if expired else "Access token is invalid.") from exc
    if await revocation.is_revoked(redis, claims):
        raise Unauthorized("Access token has been revoked.")
    try:
        user_id = uuid.UUID(claims.subject)
    except ValueError as exc:
        raise Unauthorized("Access token is invalid.") from exc
    header = (x_organization_id or "").strip()
    organization_id = _parse_org_header(header)
    if header and organization_id is None:  # malformed: names no organization, once the user is known
        organization_id = uuid.UUID(int=0)
    found = await MembershipRepository(session).get_user_and_membership(user_id, organization_id)
    if found is None or not found[0].is_active:
        raise Unauthorized("Access token is invalid.")
    user, membership, organization = found
    if membership is None or organization is None:
        if organization_id is not None:
            raise NotFound("Organization not found.")
        return user_principal(user, None, None)
    return user_principal(user, organization, Role(membership.role))


def _parse_org_header(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def require(scope: Scope, source: Callable[..., Awaitable[Principal]] = get_principal) -> Callable[..., Principal]:
    """A dependency: the principal from `source`, which must hold `scope` in its organization."""

    # A default rather than `Annotated[..., Depends(source)]`: string annotations cannot see `source`.
    def dependency(principal: Principal = Depends(source)) -> Principal:  # noqa: B008
        principal.require(scope)
        return principal

    return dependency


Authenticated = Annotated[Principal, Depends(get_principal)]
Reader = Annotated[Principal, Depends(require(Scope.read))]
Writer = Annotated[Principal, Depends(require(Scope.write))]
Admin = Annotated[Principal, Depends(require(Scope.admin))]
Owner = Annotated[Principal, Depends(require(Scope.owner))]
