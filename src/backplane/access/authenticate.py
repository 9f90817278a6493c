"""Resolving the caller from `Authorization: Bearer <access JWT | API key>`, once per request."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import time
import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal, key_principal, user_principal
from backplane.api_keys.models import is_api_key
from backplane.api_keys.repository import find_key_for_authentication, touch_last_used
from backplane.auth.revocation import is_revoked
from backplane.core.client_ip import client_ip
from backplane.core.config import Settings
from backplane.core.db import SessionDep, utcnow
from backplane.core.deps import SettingsDep
from backplane.core.errors import AppError, Forbidden, NotFound, Unauthorized
from backplane.core.redis import RedisDep
from backplane.core.security import InvalidToken, TokenClaims, decode_token, sha256_hex
from backplane.organizations.models import Role
from backplane.organizations.repository import MembershipRepository

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An access JWT (from `/api/v1/auth/token/` or `/v1/auth/login`) or an API key "
    "(`coexai_live_…` / `coexai_test_…`).",
)

ORG_HEADER_DESCRIPTION = "For JWT callers: the organization to act in (default: your oldest membership)."
MODE_HEADER = "X-Backplane-Mode"
MODE_HEADER_DESCRIPTION = (
    "`live` or `test`: the mode to act in. A signed-in user (JWT) acts in live mode unless this says `test`, "
    "which acts exactly as a test-mode API key would (test licenses, jobs, files, webhooks, events, usage; "
    "routes that need live mode refuse it). An API key's mode is its own: the header may name it, and naming "
    "the other mode is a 400."
)
# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_PRECISION = timedelta(seconds=60)
KEY_REVOKED = "This API key has been revoked."
NO_CREDENTIALS = "Authentication credentials were not provided. Send `Authorization: Bearer <token>`."


async def get_principal(
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_organization_id: Annotated[str | None, Header(description=ORG_HEADER_DESCRIPTION)] = None,
    x_backplane_mode: Annotated[str | None, Header(description=MODE_HEADER_DESCRIPTION, examples=["test"])] = None,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized(NO_CREDENTIALS)
    token = credentials.credentials.strip()
    livemode = mode_from_header(x_backplane_mode)
    if is_api_key(token):
        ip = client_ip(request, request.app.state.trusted_proxies)
        return await authenticate_key(session, token, ip, livemode=livemode)
    return await authenticate_jwt(session, redis, settings, token, x_organization_id, livemode=livemode)


class InvalidMode(AppError):
    code = "INVALID_MODE"
    default_message = f"{MODE_HEADER} must be `live` or `test`."


def mode_from_header(value: str | None) -> bool | None:
    """The livemode `X-Backplane-Mode` names (None: not sent), or 400 for anything but `live` / `test`."""
    if value is None:
        return None
    mode = value.strip().lower()
    if mode not in ("live", "test"):
        raise InvalidMode(details={"header": MODE_HEADER, "allowed": ["live", "test"]})
    return mode == "live"


def _in_mode(principal: Principal, livemode: bool | None) -> Principal:
    """A signed-in user's principal in the mode the header asked for (live when none)."""
    if livemode is None or livemode == principal.livemode:
        return principal
    return dataclasses.replace(principal, livemode=livemode)


def access_claims(settings: Settings, token: str) -> tuple[TokenClaims, uuid.UUID]:
    """A valid access token's claims and user id, or 401 (before anything is looked up)."""
    try:
        claims, user_id = _access_claims(token, settings.secret_key, settings.token_issuer)
    except InvalidToken as exc:
        expired = "expired" in str(exc).lower()
        raise Unauthorized("Access token has expired." if expired else "Access token is invalid.") from exc
    if claims.expires_at <= time.time():  # a token kept below expires like any other
        raise Unauthorized("Access token has expired.")
    return claims, user_id


# A client sends the same access token with every seat heartbeat: what it says is read once per process
# (only tokens that decoded are kept; the expiry is checked on every use, above).
@functools.lru_cache(maxsize=8192)
def _access_claims(token: str, secret: str, issuer: str) -> tuple[TokenClaims, uuid.UUID]:
    claims = decode_token(token, "access", secret, issuer=issuer)
    try:
        return claims, uuid.UUID(claims.subject)
    except ValueError as exc:
        raise InvalidToken("the subject is not a user id") from exc


def organization_from_header(organization_header: str | None) -> uuid.UUID | None:
    """The organization `X-Organization-ID` names; a malformed one names none (the nil id: 404 later)."""
    header = (organization_header or "").strip()
    organization_id = _parse_uuid(header)
    if header and organization_id is None:  # malformed: names no organization, once the user is known
        organization_id = uuid.UUID(int=0)
    return organization_id


async def authenticate_jwt(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    token: str,
    organization_header: str | None,
    *,
    livemode: bool | None = None,
) -> Principal:
    claims, user_id = access_claims(settings, token)
    if await is_revoked(redis, claims):
        raise Unauthorized("Access token has been revoked.")
    organization_id = organization_from_header(organization_header)
    found = await MembershipRepository(session).get_user_and_membership(user_id, organization_id)
    if found is None or not found[0].is_active:
        raise Unauthorized("Access token is invalid.")
    user, membership, organization = found
    if membership is None or organization is None:
        if organization_id is not None:
            raise NotFound("Organization not found.")
        return _in_mode(user_principal(user, None, None), livemode)
    return _in_mode(user_principal(user, organization, Role(membership.role)), livemode)


async def authenticate_key(
    session: AsyncSession, secret: str, ip: str | None, *, livemode: bool | None = None
) -> Principal:
    found = await find_key_for_authentication(session, sha256_hex(secret))
    if found is None:
        raise Unauthorized("Invalid API key.")
    api_key, organization, creator, membership = found
    now = utcnow()
    if api_key.revoked_at is not None:
        raise Unauthorized(KEY_REVOKED)
    # A creator who left, was removed or was deactivated took their keys with them (revoked when it
    # happened; checked here too, so that no path that forgot to revoke can leave a key working).
    if creator is None or not creator.is_active or membership is None:
        raise Unauthorized(KEY_REVOKED)
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthorized("This API key has expired.")
    if api_key.allowed_ips and not _ip_allowed(ip, api_key.allowed_ips):
        raise Forbidden("This API key may not be used from this IP address.", details={"ip": ip})
    if livemode is not None and livemode != api_key.livemode:
        own, other = ("live", "test") if api_key.livemode else ("test", "live")
        raise InvalidMode(
            f"This is a {own}-mode API key; it cannot act in {other} mode ({MODE_HEADER}: {other}). "
            f"Use a {other}-mode key, or drop the header.",
            details={"header": MODE_HEADER, "key_mode": own},
        )
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_PRECISION:
        await touch_last_used(session, api_key, now)
    return key_principal(api_key, organization, creator, Role(membership.role))


def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _ip_allowed(ip: str | None, allowed: list[str]) -> bool:
    if ip is None:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in allowed)


async def path_organization_principal(
    principal: Principal, organization_id: uuid.UUID, session: AsyncSession
) -> Principal:
    """The caller acting in the organization named by a path; 404 if they are not in it."""
    if principal.api_key is not None:
        if principal.organization is None or principal.organization.id != organization_id:
            raise NotFound("Organization not found.")
        return principal
    user = principal.require_user()
    if principal.organization is not None and principal.organization.id == organization_id:
        return principal
    found = await MembershipRepository(session).get_with_organization(user.id, organization_id)
    if found is None:
        raise NotFound("Organization not found.")
    membership, organization = found
    return _in_mode(user_principal(user, organization, Role(membership.role)), principal.livemode)
