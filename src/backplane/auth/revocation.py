"""Token revocation in Redis.

Refresh tokens are not rotated (the licensing guide's client keeps one for its whole 7 days), so
they are revoked instead: one token by its `jti` (logout), or every token of a user issued before
a cut-off (password reset, deactivation). Both keys expire with the longest token they can affect.
An access token is revoked by its own `jti` or by its sign-in's (`sid`, the refresh token's jti), so
logging out one refresh token also ends every access token refreshed from it.
"""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.security import TokenClaims

_jti_key = keys.revoked_jti
_cutoff_key = keys.revoked_before


async def revoke_token(redis: Redis, claims: TokenClaims, *, outlived_by_seconds: int = 0) -> None:
    """Deny `claims`' jti until it expires, plus `outlived_by_seconds`: for a refresh token, the access
    token TTL, since an access token refreshed from it just before its expiry outlives it by that much."""
    ttl = max(1, int(claims.expires_at - time.time()) + 1 + outlived_by_seconds)
    await redis.set(_jti_key(claims.jti), "1", ex=ttl)


async def revoke_all_for_user(redis: Redis, user_id: uuid.UUID, longest_ttl_seconds: int) -> None:
    await redis.set(_cutoff_key(user_id), repr(time.time()), ex=longest_ttl_seconds + 1)


def revocation_keys(claims: TokenClaims) -> tuple[str, str, str]:
    """What says whether `claims` are revoked: its jti's key, its user's cut-off key, its sign-in's key
    (the jti's again when it has no other sign-in). Revoked if either jti key exists, or if the
    cut-off (seconds) is at or after `issued_at`."""
    session = claims.session_id if claims.session_id not in (None, claims.jti) else claims.jti
    return _jti_key(claims.jti), _cutoff_key(claims.subject), _jti_key(session)


async def is_revoked(redis: Redis, claims: TokenClaims) -> bool:
    denied, cutoff, session_denied = await redis.mget(revocation_keys(claims))
    if denied is not None or session_denied is not None:
        return True
    return cutoff is not None and claims.issued_at <= float(cutoff)
