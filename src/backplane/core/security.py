"""Cryptographic primitives: the only module that touches python-jose and the password hasher.

JWTs are HS256 only (pinned on decode, so `alg: none` and RS/HS confusion are refused) and must
carry `exp`, `iat`, `sub`, `jti`, `type`, `iss` (this deployment's PUBLIC_BASE_URL) and `aud`
(`backplane`), so a token another service or deployment signed with a shared secret is refused.
Tokens of one sign-in share `sid`, the refresh token's `jti`: revoking it revokes them all.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from jose import JWTError, jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

ALGORITHM = "HS256"
AUDIENCE = "backplane"
TokenType = Literal["access", "refresh"]

_password_hash = PasswordHash((Argon2Hasher(),))

# Argon2 takes a few hundred milliseconds of CPU and 64 MiB per hash by design. argon2-cffi releases
# the GIL, so in threads it leaves the event loop free; a small fixed pool (half the cores, at most 4)
# bounds how much CPU and memory a burst of sign-ins can take, and extra sign-ins queue for a thread.
# A plain executor rather than an anyio CapacityLimiter: it belongs to no event loop, so one module-level
# pool serves every loop that uses it (the API's, each test's).
HASH_THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
_hash_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="argon2")


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong type."""


class ExpiredToken(InvalidToken):
    """The token was valid but its `exp` has passed."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    token_type: TokenType
    jti: str
    issued_at: float
    expires_at: float
    session_id: str | None = None  # `sid`: the refresh token's jti (absent from tokens issued before it existed)


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool, _hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool, _verify, password, password_hash)


def _hash(password: str) -> str:
    return _password_hash.hash(password)


def _verify(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _password_hash.verify(password, _dummy_hash())
        return False
    try:
        return _password_hash.verify(password, password_hash)
    except Exception:  # a corrupt stored hash is a failed login, not a 500
        return False


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so a wrong email costs the same time as a
    wrong password and response times do not reveal which accounts exist. Made on first use, not at import."""
    return _password_hash.hash(secrets.token_urlsafe(16))


def create_token(
    subject: str,
    token_type: TokenType,
    ttl_seconds: int,
    secret: str,
    *,
    issuer: str,
    session_id: str | None = None,
) -> tuple[str, TokenClaims]:
    """A signed token; a refresh token starts a sign-in (its jti is its `sid`), an access token joins one."""
    now = time.time()
    jti = uuid.uuid4().hex
    claims = TokenClaims(
        subject=subject,
        token_type=token_type,
        jti=jti,
        issued_at=now,  # sub-second, so a token issued just after a revocation cut-off stays valid
        expires_at=now + ttl_seconds,
        session_id=session_id or (jti if token_type == "refresh" else None),
    )
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "type": token_type,
        "jti": claims.jti,
        "iat": claims.issued_at,
        "exp": int(claims.expires_at),
    }
    if claims.session_id is not None:
        payload["sid"] = claims.session_id
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def decode_token(token: str, expected_type: TokenType, secret: str, *, issuer: str) -> TokenClaims:
    try:
        payload = _verified_payload(token, secret, issuer)
    except JWTError as exc:
        raise InvalidToken(str(exc)) from exc
    except Exception as exc:  # python-jose raises assorted errors on garbage input
        raise InvalidToken("malformed token") from exc
    if isinstance(payload.get("exp"), bool) or not isinstance(payload.get("exp"), int | float):
        raise InvalidToken('missing required key "exp" among claims')
    if payload["exp"] <= time.time():
        raise ExpiredToken("Signature has expired.")
    token_type = payload.get("type")
    if token_type != expected_type:
        raise InvalidToken(f"expected a {expected_type} token")
    if not all(isinstance(payload.get(k), str) for k in ("sub", "jti")) or not isinstance(payload.get("sid", ""), str):
        raise InvalidToken("malformed claims")
    return TokenClaims(
        subject=payload["sub"],
        token_type=token_type,
        jti=payload["jti"],
        issued_at=float(payload["iat"]),
        expires_at=float(payload["exp"]),
        session_id=payload.get("sid"),
    )


# A client sends the same access token with every request for its whole life (heartbeats every few
# minutes, all day): its signature and fixed claims are checked once per process, the expiry on every
# use (above). Only tokens that verified are kept (an exception is never cached), so garbage cannot
# fill the cache; a verification cannot go stale (revocation is checked in Redis on every request).
@functools.lru_cache(maxsize=8192)
def _verified_payload(token: str, secret: str, issuer: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=issuer,
        options={
            "verify_exp": False,  # checked on every use by decode_token ("require_exp" would verify it here)
            "require_iat": True,
            "require_sub": True,
            "require_jti": True,
            "require_iss": True,
            "require_aud": True,
        },
    )
    return payload


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT whose signature is not ours to check (an ID token received directly from a
    provider's token endpoint over TLS); {} when it is not a readable JWT."""
    try:
        claims = jwt.get_unverified_claims(token)
    except Exception:  # python-jose raises assorted errors on garbage input
        return {}
    return claims if isinstance(claims, dict) else {}


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """Hash for high-entropy secrets (API keys, email tokens): a slow hash adds nothing there."""
    return hashlib.sha256(value.encode()).hexdigest()
