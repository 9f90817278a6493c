"""Sign-in and account-mail throttling: the auth policy on top of the GCRA limiter (core/ratelimit.py).

Sign-in (`POST /api/v1/auth/token/`, `POST /v1/auth/login`), besides the per-client limit of every
authentication route (5 a minute per IPv4 address or IPv6 /64, auth/limits.py):

- Failed attempts per email address: 10 per 15 minutes, refilled one every 90 seconds. It is a rate,
  not a lockout: whoever keeps failing is let through again as time passes, and a successful sign-in
  does not count (its attempt is given back). Unknown addresses are counted the same way, so the
  answers never tell which accounts exist.
- A correct password from a network the account signed in from in the last 30 days (an IPv4
  address or an IPv6 /64) is not held back by failures made elsewhere: that network has its own
  budget for the account (also 10 per 15 minutes). An attacker can keep an account's budget spent
  from anywhere, forever; its owner still signs in from home or the office, and an attacker on the
  owner's network is limited there as everywhere. What remains: while such an attack lasts, the
  owner on a new network waits for the next attempt let through (at most 90 seconds), or signs in
  with a linked provider.

Account mail (verification and password-reset links): at most 3 an hour per recipient address;
beyond that no mail is sent and the request answers as it always does.

Everything here is off with RATE_LIMITS_ENABLED=false, like every other limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from backplane.core import keys
from backplane.core.client_ip import client_ip, client_network
from backplane.core.config import Settings
from backplane.core.ratelimit import Decision, Limit, RateLimited, RateLimiter
from backplane.core.security import sha256_hex

logger = logging.getLogger(__name__)

ACCOUNT_FAILURES = Limit("sign-in-account", 10, 15 * 60)
KNOWN_NETWORK_FAILURES = Limit("sign-in-account-network", 10, 15 * 60)
KNOWN_NETWORK_SECONDS = 30 * 86400
MAIL_PER_RECIPIENT = Limit("account-mail", 3, 3600)


class SignInThrottled(RateLimited):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision)
        self.message = (
            f"Too many failed sign-in attempts for this account. Try again in {decision.retry_after_seconds} seconds."
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """A sign-in attempt counted against `limit` for `subject`, until it turns out to succeed."""

    account: str
    subject: str
    limit: Limit


class SignInThrottle:
    """Per account, for one request from `network`; `limiter` None: throttling is off."""

    def __init__(self, limiter: RateLimiter | None, redis: Redis, network: str) -> None:
        self.limiter = limiter
        self.redis = redis
        self.network = network

    async def attempt(self, email: str) -> Attempt | None:
        """Count an attempt for `email` before its password is checked; SignInThrottled when over the limit."""
        if self.limiter is None:
            return None
        account = _account(email)
        if await self.redis.exists(_known_key(account, self.network)):
            attempt = Attempt(account, f"{account}:{self.network}", KNOWN_NETWORK_FAILURES)
        else:
            attempt = Attempt(account, account, ACCOUNT_FAILURES)
        decision = await self.limiter.hit(attempt.subject, attempt.limit)
        if not decision.allowed:
            raise SignInThrottled(decision)
        return attempt

    async def succeeded(self, attempt: Attempt | None) -> None:
        """The password was right: the attempt does not count, and this network is now known to the account."""
        if attempt is None or self.limiter is None:
            return
        await self.limiter.refund(attempt.subject, attempt.limit)
        await self.redis.set(_known_key(attempt.account, self.network), "1", ex=KNOWN_NETWORK_SECONDS)


def _account(email: str) -> str:
    """The key part for an address: its hash, so Redis holds no email addresses."""
    return sha256_hex(email.strip().lower())


_known_key = keys.sign_in_network


async def sign_in_throttle(request: Request) -> SignInThrottle:
    state = request.app.state
    settings: Settings = state.settings
    network = client_network(client_ip(request, state.trusted_proxies) or "unknown")
    return SignInThrottle(state.limiter if settings.rate_limits_enabled else None, state.redis, network)


SignInThrottleDep = Annotated[SignInThrottle, Depends(sign_in_throttle)]


async def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


LimiterDep = Annotated[RateLimiter, Depends(_limiter)]


async def may_mail(limiter: RateLimiter, settings: Settings, address: str) -> bool:
    """Count one account mail to `address`; False (send nothing) when it has had its share this hour."""
    if not settings.rate_limits_enabled:
        return True
    decision = await limiter.hit(_account(address), MAIL_PER_RECIPIENT)
    if not decision.allowed:
        logger.warning("account mail not sent: recipient over %d an hour", MAIL_PER_RECIPIENT.rate)
    return decision.allowed
