"""API keys: `coexai_live_…` / `coexai_test_…`, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import secrets
import string
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.api_keys.models import LIVE_PREFIX, TEST_PREFIX, ApiKey, RevokedReason
from backplane.api_keys.repository import ApiKeyRepository
from backplane.api_keys.schemas import ApiKeyCreate, ApiKeyRead
from backplane.core.db import utcnow
from backplane.core.errors import InvalidInput, NotFound
from backplane.core.security import sha256_hex
from backplane.events.service import record_event

SECRET_LENGTH = 40
DISPLAY_CHARS = 8
_ALPHABET = string.ascii_letters + string.digits


def _new_secret(livemode: bool) -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    return (LIVE_PREFIX if livemode else TEST_PREFIX) + random_part


async def create_key(session: AsyncSession, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    livemode = data.mode == "live"
    if livemode and not principal.livemode:
        raise InvalidInput(
            {"mode": ["In test mode (a test-mode key, or X-Backplane-Mode: test) only test-mode keys can be created."]}
        )
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
    _announce(session, api_key, "api_key.created")
    return api_key, secret


def _announce(session: AsyncSession, api_key: ApiKey, event_type: str) -> None:
    data = ApiKeyRead.model_validate(api_key).model_dump(mode="json")  # never the secret: it is not kept
    record_event(session, api_key.organization_id, event_type, data, livemode=api_key.livemode)


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
        api_key.revoked_reason = RevokedReason.revoked
        await session.flush()
        _announce(session, api_key, "api_key.revoked")
    return api_key
