"""The monthly job quota: counted atomically in Redis, reconciled with PostgreSQL's count.

`consume` is called when a job is created (the jobs issue); `give_back` when the creating
transaction fails; `reconcile` sets the counter from the jobs table, so a lost Redis never
hands out a fresh quota mid-month for long.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from backplane.billing.plans import Plan
from backplane.core import keys
from backplane.core.errors import AppError

# KEYS: counter; ARGV: limit, amount, expire-at (epoch s) -> {allowed, used}
_CONSUME = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if used + amount > tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
return {1, used}
"""


_SCRIPTS: weakref.WeakKeyDictionary[Redis, dict[str, AsyncScript]] = weakref.WeakKeyDictionary()


def _script(redis: Redis, source: str) -> AsyncScript:
    """The script registered once per client (registering hashes the source; this is the job path)."""
    scripts = _SCRIPTS.setdefault(redis, {})
    if source not in scripts:
        scripts[source] = redis.register_script(source)
    return scripts[source]


class QuotaExceeded(AppError):
    status_code, code, title = 429, "QUOTA_EXCEEDED", "Quota exceeded"


def period_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) containing `now`: [start, next start)."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return start, following


def _key(organization_id: uuid.UUID, start: datetime) -> str:
    return keys.monthly_jobs(organization_id, start)


async def consume(redis: Redis, organization_id: uuid.UUID, plan: Plan, now: datetime, amount: int = 1) -> int:
    """Take `amount` jobs from this month's quota; the jobs used so far. Raises QuotaExceeded."""
    if plan.jobs_per_month is None:
        return 0
    start, reset_at = period_bounds(now)
    allowed, used = await _script(redis, _CONSUME)(
        keys=[_key(organization_id, start)], args=[plan.jobs_per_month, amount, int(reset_at.timestamp()) + 86400]
    )
    if not int(allowed):
        raise QuotaExceeded(
            f"Monthly job quota exceeded: {plan.jobs_per_month} jobs on the {plan.name} plan. "
            f"It resets at {reset_at.isoformat().replace('+00:00', 'Z')}.",
            details={
                "limit": plan.jobs_per_month,
                "used": int(used),
                "reset_at": reset_at.isoformat().replace("+00:00", "Z"),
            },
            headers={"Retry-After": str(max(1, int((reset_at - now).total_seconds())))},
        )
    return int(used)


# Only an existing counter is decremented: a missing one (Redis lost it) must stay missing, so
# that the next creation rebuilds it from PostgreSQL instead of counting from -1.
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECRBY', KEYS[1], ARGV[1]) end
return nil
"""


async def give_back(redis: Redis, organization_id: uuid.UUID, month: datetime, amount: int = 1) -> None:
    """Return `amount` jobs to the quota of the month containing `month` (when the job was created)."""
    start, _ = period_bounds(month)
    await _script(redis, _GIVE_BACK)(keys=[_key(organization_id, start)], args=[amount])


async def reconcile(
    redis: Redis, organization_id: uuid.UUID, counted: int, now: datetime, *, only_if_missing: bool = False
) -> None:
    """Set this month's counter to the jobs PostgreSQL holds for the month.

    `only_if_missing`: leave a counter that appeared meanwhile (a concurrent rebuild and its increment).
    """
    start, reset_at = period_bounds(now)
    expire_at = int(reset_at.timestamp()) + 86400
    await redis.set(_key(organization_id, start), counted, exat=expire_at, nx=only_if_missing)


async def is_counted(redis: Redis, organization_id: uuid.UUID, now: datetime) -> bool:
    """Whether Redis holds this month's counter (False after Redis lost it: reconcile first)."""
    start, _ = period_bounds(now)
    return bool(await redis.exists(_key(organization_id, start)))


async def used(redis: Redis, organization_id: uuid.UUID, now: datetime) -> int:
    start, _ = period_bounds(now)
    return int(await redis.get(_key(organization_id, start)) or 0)
