"""API keys: `coexai_live_…` / `coexai_test_…`, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import ipaddress
import secrets
import string
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.api_keys.models import ApiKey
from backplane.api_keys.repository import (
    ApiKeyRepository,
    find_key_for_authentication,
    touch_last_used,
)
from backplane.api_keys.schemas import ApiKeyCreate
from backplane.auth.principal import Principal, key_principal
from backplane.core.db import utcnow
from backplane.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from backplane.core.security import sha256_hex

LIVE_PREFIX = "coexai_live_"
TEST_PREFIX = "coexai_test_"
SECRET_LENGTH = 40
DISPLAY_CHARS = 8
_ALPHABET = string.ascii_letters + string.digits
# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_PRECISION = timedelta(seconds=60)


def is_api_key(token: str) -> bool:
    return token.startswith((LIVE_PREFIX, TEST_PREFIX))


def _new_secret(livemode: bool) -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    return (LIVE_PREFIX if livemode else TEST_PREFIX) + random_part


async def create_key(session: AsyncSession, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    livemode = data.mode == "live"
    if livemode and not principal.livemode:
        raise InvalidInput({"mode": ["A test-mode key can only create test-mode keys."]})
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise InvalidInput({"expires_at": ["Must be in the future."]})
    secret = _new_secret(livemode)
    prefix_len = len(LIVE_PREFIX) + DISPLAY_CHARS
    api_key = ApiKeyRepository(session, principal.organization_id).add(
        ApiKey(
            id=uuid.uuid4(),
            organization_id=principal.organization_id,
            created_by_id=principal.user.id if principal.user else None,
            name=data.name,
            prefix=secret[:prefix_len],
            key_hash=sha256_hex(secret),
            livemode=livemode,
            scopes=list(data.scopes),
            allowed_ips=list(data.allowed_ips),
            expires_at=data.expires_at,
        )
    )
    await session.flush()
    return api_key, secret


async def get_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    api_key = await ApiKeyRepository(session, principal.organization_id).get(key_id)
    if api_key is None:
        raise NotFound("No API key with this id.")
    return api_key


async def revoke_key(session: AsyncSession, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    api_key = await ApiKeyRepository(session, principal.organization_id).get(key_id, for_update=True)
    if api_key is None:
        raise NotFound("No API key with this id.")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        await session.flush()
    return api_key


async def authenticate_key(session: AsyncSession, secret: str, client_ip: str | None) -> Principal:
    found = await find_key_for_authentication(session, sha256_hex(secret))
    if found is None:
        raise Unauthorized("Invalid API key.")
    api_key, organization, creator = found
    now = utcnow()
    if api_key.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise Unauthorized("This API key has expired.")
    if api_key.allowed_ips and not _ip_allowed(client_ip, api_key.allowed_ips):
        raise Forbidden(
            "This API key may not be used from this IP address.",
            details={"ip": client_ip},
        )
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_PRECISION:
        await touch_last_used(session, api_key, now)
    return key_principal(api_key, organization, creator)


def _ip_allowed(client_ip: str | None, allowed: list[str]) -> bool:
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in allowed)
