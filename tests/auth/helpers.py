"""Assertions and token builders shared by the auth tests."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

from jose import jwt

from tests.fixtures.assertions import INVALID_MESSAGE as INVALID_BODY
from tests.fixtures.assertions import assert_error as assert_platform_error
from tests.fixtures.assertions import assert_invalid as assert_platform_fields
from tests.fixtures.assertions import assert_licensing_error, assert_licensing_fields
from tests.fixtures.smtp import Mailbox

__all__ = [
    "INVALID_BODY",
    "assert_licensing_error",
    "assert_licensing_fields",
    "assert_platform_error",
    "assert_platform_fields",
]

BAD_CREDENTIALS = "No active account found with the given credentials."
NO_CREDENTIALS = "Authentication credentials were not provided. Send `Authorization: Bearer <token>`."
INVALID_LINK = "This link is invalid, has expired or was already used. Request a new one."
REFRESH_INVALID = "Refresh token is invalid or expired. Sign in again."
REFRESH_REVOKED = "Refresh token has been revoked. Sign in again."
ACCESS_INVALID = "Access token is invalid."
ACCESS_EXPIRED = "Access token has expired."
ACCESS_REVOKED = "Access token has been revoked."
FIELD_REQUIRED = "This field is required."
INVALID_EMAIL = "Enter a valid email address."
SHORT_PASSWORD = "Password must be at least 8 characters."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# What the test settings' tokens carry: `iss` is PUBLIC_BASE_URL, `aud` the service's name.
ISSUER = "http://testserver"
AUDIENCE = "backplane"


def claims_for(user_id: str, token_type: str = "access", *, ttl: int = 900, **overrides: Any) -> dict[str, Any]:
    """The claims the service itself puts in a token; `overrides` set (or, with None, drop) some."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
        "type": token_type,
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def forge(claims: dict[str, Any], secret: str, algorithm: str = "HS256") -> str:
    token: str = jwt.encode(claims, secret, algorithm=algorithm)
    return token


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """An `alg: none` JWT: header and payload, and an empty signature."""
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}."


def mailed_token(mailbox: Mailbox, address: str, path: str) -> str:
    """The token of the last link to `/api/v1/auth/<path>/?token=...` mailed to `address`.

    Every message is searched: the worker sends queued mails concurrently, so the verification
    mail of a registration may arrive after a reset mail queued just behind it.
    """
    bodies = [Mailbox.body(message) for message in mailbox.to(address)]
    found = [t for body in bodies for t in re.findall(rf"/api/v1/auth/{path}/\?token=([A-Za-z0-9_\-]+)", body)]
    assert found, bodies
    token: str = found[-1]
    return token
