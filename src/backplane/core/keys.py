"""Every Redis key and pub/sub channel of the service, built here under one prefix, `bp:`.

A module that needs a key calls its builder rather than spelling it, so what lives in Redis can be
read off this one file. Two kinds of names are not ours and stay as they are: arq's own keys
(`arq:…`) and its queue names (`backplane:queue`, `backplane:jobs`, in `core/queue.py` and
`jobs/lifecycle.py`: renaming a queue would strand the jobs waiting in it during a deploy).

Keys that must outlive a deploy of the version that moved them under the prefix (revocations, seat
leases, monthly quota counters, sign-in networks, used upload links) are renamed once by
`backplane migrate` (`rename_legacy_keys`), so that no revoked token comes back to life.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from redis.asyncio import Redis

PREFIX = "bp:"

# -- access and sign-in -----------------------------------------------------------------------------


def caller(user_id: uuid.UUID | str) -> str:
    """What a user is in each organization (access/callers.py)."""
    return f"{PREFIX}caller:{user_id}"


def revoked_jti(jti: str) -> str:
    """A revoked token, by its `jti` (auth/revocation.py)."""
    return f"{PREFIX}auth:revoked-jti:{jti}"


def revoked_before(user_id: uuid.UUID | str) -> str:
    """A user's tokens issued before this time are revoked (auth/revocation.py)."""
    return f"{PREFIX}auth:revoked-before:{user_id}"


def sign_in_network(account: str, network: str) -> str:
    """An account has signed in from this network (auth/throttle.py)."""
    return f"{PREFIX}auth:sign-in-network:{account}:{network}"


def oauth_state(state_hash: str) -> str:
    return f"{PREFIX}oauth:state:{state_hash}"


def rate_limit(name: str, subject: str) -> str:
    """One GCRA subject's theoretical arrival time (core/ratelimit.py)."""
    return f"{PREFIX}rl:{name}:{subject}"


# -- licenses and seats -----------------------------------------------------------------------------

LEASES_PREFIX = f"{PREFIX}lic:"  # + license id + ":leases" | ":hw" | ":meta" (licenses/leases.py)
LEASE_PREFIX = f"{PREFIX}lease:"  # + session id: the live lease
LEASE_EXPIRY_INDEX = f"{PREFIX}leases:expiry"
LEASES_ENDED = f"{PREFIX}leases:ended"
LEASES_EPOCH = f"{PREFIX}leases:epoch"
LEASES_RESTORING = f"{PREFIX}leases:restoring"


def license_leases(license_id: uuid.UUID | str) -> tuple[str, str, str]:
    """A license's live leases (ZSET), machines (HASH) and lease history (HASH)."""
    base = f"{LEASES_PREFIX}{license_id}"
    return f"{base}:leases", f"{base}:hw", f"{base}:meta"


def lease(session_id: uuid.UUID | str) -> str:
    return f"{LEASE_PREFIX}{session_id}"


def license_state(license_id: uuid.UUID | str) -> str:
    """A license's seats, status, expiry and mode beside its leases (licenses/state.py)."""
    return f"{PREFIX}license:{license_id}"


def license_by_key(key_hash: str) -> str:
    """A license's id by the SHA-256 of its key (licenses/state.py)."""
    return f"{PREFIX}license-key:{key_hash}"


# -- billing, files ---------------------------------------------------------------------------------


def plan_cache(organization_id: uuid.UUID | str) -> str:
    return f"{PREFIX}billing:plan:{organization_id}"


def local_checkout(session_id: str) -> str:
    return f"{PREFIX}billing:local-checkout:{session_id}"


def local_portal(token: str) -> str:
    return f"{PREFIX}billing:local-portal:{token}"


def monthly_jobs(organization_id: uuid.UUID | str, month_start: datetime) -> str:
    """Jobs used in a month (billing/quota.py)."""
    return f"{PREFIX}quota:jobs:{organization_id}:{month_start:%Y-%m}"


def upload_used(file_id: str) -> str:
    """A signed upload link already used (files/presigned.py)."""
    return f"{PREFIX}files:upload-used:{file_id}"


# -- jobs (pub/sub channels) ----------------------------------------------------------------------

JOBS_CANCEL_CHANNEL = f"{PREFIX}jobs:cancel"  # a running job was cancelled: its worker aborts it
JOBS_WAKE_CHANNEL = f"{PREFIX}jobs:wake"  # a job was handed out: idle jobs workers poll arq's queue now


def job_final_channel(job_id: str) -> str:
    """A job's final state is announced here (`?wait=` listens)."""
    return f"{PREFIX}jobs:final:{job_id}"


def job_changed_channel(job_id: str) -> str:
    """A job changed status or reported progress (its events stream, `jobs/live.py`, listens)."""
    return f"{PREFIX}jobs:changed:{job_id}"


def job_progress(job_id: str) -> str:
    """A Redis stream of the progress a job's agent reported (`jobs/live.py`)."""
    return f"{PREFIX}jobs:progress:{job_id}"


def job_webhook_progress(job_id: str) -> str:
    """Set while a job's own webhook may get no further progress notification (`jobs/hooks.py`)."""
    return f"{PREFIX}jobs:webhook-progress:{job_id}"


# -- events and webhooks ----------------------------------------------------------------------------

EVENTS_COMMITTED = f"{PREFIX}events:committed"  # pushed after an event commits: the dispatcher wakes


def webhook_slots(endpoint_id: str) -> str:
    """An endpoint's attempts in flight (webhooks/slots.py)."""
    return f"{PREFIX}webhooks:slots:{endpoint_id}"


def webhook_waiting(endpoint_id: str) -> str:
    """Deliveries waiting for one of the endpoint's slots."""
    return f"{PREFIX}webhooks:waiting:{endpoint_id}"


def webhook_breaker(endpoint_id: str) -> str:
    """The endpoint's circuit breaker: consecutive failures, and while open until when (webhooks/slots.py)."""
    return f"{PREFIX}webhooks:breaker:{endpoint_id}"


# -- workers ----------------------------------------------------------------------------------------

WORKERS_PREFIX = f"{PREFIX}workers:"


def worker_heartbeat(name: str) -> str:
    return f"{WORKERS_PREFIX}{name}"


# -- moving keys of an earlier version under the prefix ----------------------------------------------

LEGACY_PREFIXES = (
    "auth:revoked-jti:",
    "auth:revoked-before:",
    "auth:sign-in-network:",
    "lic:",
    "lease:",
    "leases:expiry",
    "leases:ended",
    "leases:epoch",
    "quota:jobs:",
    "files:upload-used:",
)


async def rename_legacy_keys(redis: Redis) -> int:
    """Move the long-lived keys of a version before the prefix under it (their TTLs go with them); a key
    that exists under both names keeps the new one. Idempotent; how many keys moved."""
    moved = 0
    for legacy in LEGACY_PREFIXES:
        async for name in redis.scan_iter(match=f"{legacy}*", count=1000):
            key = name.decode() if isinstance(name, bytes) else name
            if await redis.renamenx(key, f"{PREFIX}{key}"):
                moved += 1
            else:
                await redis.delete(key)
    return moved
