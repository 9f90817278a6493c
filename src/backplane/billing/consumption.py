"""Usage that customers can see (`GET /v1/usage`), and the quota thresholds they are warned at.

Every number is read from PostgreSQL (jobs, files, usage reports) or, for what is live now, from
Redis's seat leases; the quota's Redis counter, which Redis may lose, is never what is shown. A past
month (`?period=2026-10`) is measured against today's plan: the plan of that month is not kept.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.billing import quota
from backplane.billing.models import QuotaNotice, UsageReport
from backplane.billing.plans import Plan
from backplane.core.errors import InvalidInput
from backplane.events.service import record_event
from backplane.files.models import File
from backplane.jobs.models import Job, JobStatus
from backplane.licenses.leases import Leases
from backplane.licenses.models import License

THRESHOLDS = (75, 90, 100)  # percent of the monthly job quota: a `quota.threshold_reached` event each
MAX_LICENSES_SHOWN = 100
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_of(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def parse_period(value: str | None, now: datetime) -> datetime:
    """The first moment of the month `value` names (YYYY-MM), else of this month; 422 for anything else
    or a month still to come."""
    if value is None:
        return quota.period_bounds(now)[0]
    match = _PERIOD.match(value)
    if match is None or int(match[1]) < 2000:
        raise InvalidInput({"period": ["A month as YYYY-MM, e.g. 2026-10."]})
    start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
    if start > now:
        raise InvalidInput({"period": ["This month has not begun yet."]})
    return start


async def note_thresholds(
    session: AsyncSession, organization_id: uuid.UUID, plan: Plan, before: int, after: int, now: datetime
) -> list[int]:
    """The thresholds that going from `before` to `after` jobs this month crossed, each recorded (once
    per month: a unique row in the same transaction as the jobs) with its `quota.threshold_reached`."""
    limit = plan.jobs_per_month
    if limit is None:
        return []
    period = period_of(now)
    reached = []
    for percent in THRESHOLDS:
        mark = limit * percent / 100
        if not before < mark <= after:
            continue
        inserted = await session.execute(
            insert(QuotaNotice)
            .values(organization_id=organization_id, period=period, percent=percent, reached_at=now)
            .on_conflict_do_nothing()
            .returning(QuotaNotice.percent)
        )
        if inserted.first() is None:
            continue  # reached already this month (the counter was rebuilt, or jobs given back and taken again)
        reached.append(percent)
        _, reset_at = quota.period_bounds(now)
        record_event(
            session,
            organization_id,
            "quota.threshold_reached",
            {
                "period": period,
                "threshold_percent": percent,
                "jobs_used": after,
                "jobs_quota": limit,
                "plan": str(plan.name),
                "resets_at": reset_at.isoformat().replace("+00:00", "Z"),
            },
        )
    return reached


def _counted(start: datetime, end: datetime) -> Any:
    """Jobs the quota counts in [start, end): every job created, less those cancelled before they ran."""
    return (
        Job.created_at >= start,
        Job.created_at < end,
        ~((Job.status == JobStatus.CANCELLED) & (Job.attempts == 0)),
    )


async def summary(
    session: AsyncSession,
    leases: Leases,
    plan: Plan,
    organization_id: uuid.UUID,
    livemode: bool,
    start: datetime,
    now: datetime,
) -> dict[str, Any]:
    _, end = quota.period_bounds(start)
    current = start <= now < end
    by_agent = dict(
        (
            await session.execute(
                select(Job.agent_id, func.count())
                .where(Job.organization_id == organization_id, *_counted(start, end))
                .group_by(Job.agent_id)
                .order_by(Job.agent_id)
            )
        ).all()
    )
    used = sum(by_agent.values())
    utc_day = func.date(func.timezone("UTC", Job.created_at))
    counted_by_day: dict[date, int] = dict(
        (
            await session.execute(
                select(utc_day, func.count())
                .where(Job.organization_id == organization_id, *_counted(start, end))
                .group_by(utc_day)
            )
        ).all()
    )
    last_day = (min(now, end - timedelta(seconds=1)) if current else end - timedelta(seconds=1)).date()
    by_day = [
        {"date": day.isoformat(), "jobs": int(counted_by_day.get(day, 0))}
        for day in (start.date() + timedelta(days=n) for n in range((last_day - start.date()).days + 1))
    ]
    limit = plan.jobs_per_month
    running = 0
    if current:
        running = int(
            (
                await session.execute(
                    select(func.count()).where(
                        Job.organization_id == organization_id,
                        or_(
                            Job.status == JobStatus.PROCESSING,
                            (Job.status == JobStatus.QUEUED) & Job.dispatch_token.is_not(None),
                        ),
                    )
                )
            ).scalar_one()
        )
    licenses = (
        (
            await session.execute(
                select(License)
                .where(License.organization_id == organization_id, License.livemode == livemode)
                .order_by(License.created_at, License.id)
                .limit(MAX_LICENSES_SHOWN)
            )
        )
        .scalars()
        .all()
    )
    live = await leases.live_counts([license_.id for license_ in licenses]) if current else {}
    seats = [
        {
            "license_id": str(license_.id),
            "tier": license_.tier,
            "seats": license_.seats,
            "live": live.get(license_.id) if current else None,
        }
        for license_ in licenses
    ]
    stored = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(File.size_bytes), 0)).where(
                File.organization_id == organization_id, File.livemode == livemode, File.status == "ready"
            )
        )
    ).one()
    reported = dict(
        (
            await session.execute(
                select(UsageReport.event_name, func.sum(UsageReport.value))
                .where(
                    UsageReport.organization_id == organization_id,
                    UsageReport.reported_at >= start,
                    UsageReport.reported_at < end,
                )
                .group_by(UsageReport.event_name)
                .order_by(UsageReport.event_name)
            )
        ).all()
    )
    notices = (
        await session.execute(
            select(QuotaNotice.percent)
            .where(QuotaNotice.organization_id == organization_id, QuotaNotice.period == period_of(start))
            .order_by(QuotaNotice.percent)
        )
    ).scalars()
    return {
        "period": period_of(start),
        "period_start": start,
        "period_end": end,
        "plan": str(plan.name),
        "jobs": {
            "used": used,
            "quota": limit,
            "remaining": None if limit is None else max(0, limit - used),
            "percent_used": None if not limit else round(100 * used / limit, 1),
            "by_agent": by_agent,
            "by_day": by_day,
            "thresholds_reached": list(notices),
        },
        "concurrency": {"running": running if current else None, "limit": plan.concurrent_jobs},
        "seats": seats,
        "storage": {"files": int(stored[0]), "used_bytes": int(stored[1]), "max_file_bytes": plan.max_upload_bytes},
        "rate_limit": {"requests_per_minute": plan.requests_per_minute, "burst": plan.burst},
        "reported_to_stripe": {name: int(value) for name, value in reported.items()},
    }


async def record_report(
    session: AsyncSession, organization_id: uuid.UUID, identifier: str, event_name: str, value: int
) -> None:
    """Keep a meter event Stripe accepted (once per identifier, like Stripe)."""
    await session.execute(
        insert(UsageReport)
        .values(
            identifier=identifier,
            organization_id=organization_id,
            event_name=event_name,
            value=value,
            reported_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
