"""The `state` of a sign-in: single use in Redis, bound to the browser that started it by a signed cookie.

Redis keeps what must stay on the server (the PKCE verifier, the frontend URL) under a hash of the
state, for OAUTH_STATE_TTL_SECONDS, and hands it out once (GETDEL). The browser gets an httpOnly
cookie signed with SECRET_KEY (itsdangerous) that names the same state: a callback that arrives in
another browser (login CSRF: an attacker's own code and state) has no matching cookie and is refused.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.config import Settings

COOKIE_NAME = "backplane_oauth_state"
COOKIE_PATH = "/v1/auth/oauth"
_SALT = "backplane.oauth.state"


@dataclass(frozen=True, slots=True)
class Started:
    """A sign-in as the browser's cookie remembers it (signed, so it can be believed)."""

    state: str
    provider: str
    redirect_uri: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-in as Redis keeps it, handed out once."""

    provider: str
    code_verifier: str
    redirect_uri: str


def new_state() -> str:
    return secrets.token_urlsafe(32)


def new_code_verifier() -> str:
    return secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43 to 128


def _key(state: str) -> str:
    return keys.oauth_state(hashlib.sha256(state.encode()).hexdigest())


async def save(redis: Redis, settings: Settings, state: str, pending: Pending) -> None:
    value = json.dumps(
        {"provider": pending.provider, "code_verifier": pending.code_verifier, "redirect_uri": pending.redirect_uri}
    )
    await redis.set(_key(state), value, ex=settings.oauth.oauth_state_ttl_seconds)


async def take(redis: Redis, state: str) -> Pending | None:
    """The pending sign-in for `state`, removed at once: a second callback with it finds nothing."""
    raw = await redis.getdel(_key(state))
    if raw is None:
        return None
    data: dict[str, Any] = json.loads(raw)
    return Pending(data["provider"], data["code_verifier"], data["redirect_uri"])


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def sign_cookie(settings: Settings, started: Started) -> str:
    return _serializer(settings).dumps({"s": started.state, "p": started.provider, "r": started.redirect_uri})


def read_cookie(settings: Settings, value: str | None) -> Started | None:
    """The sign-in this browser started, or None: no cookie, a forged or altered one, or one too old."""
    if not value:
        return None
    try:
        data = _serializer(settings).loads(value, max_age=settings.oauth.oauth_state_ttl_seconds)
    except BadData:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("s", "p", "r")):
        return None
    return Started(data["s"], data["p"], data["r"])


def matches(started: Started | None, provider: str, state: str | None) -> bool:
    return (
        started is not None
        and state is not None
        and started.provider == provider
        and secrets.compare_digest(started.state.encode(), state.encode())
    )
