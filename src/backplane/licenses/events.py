"""The licenses' platform events: `license.created`, `license.updated`, `license.suspended`, and from a
daily cron `license.expiring` (7 days and 1 day before) and `license.expired`.

Their `data` is the license as the API shows it (`LicenseRead`: the key string is the customer's own
product key and is shown there too; never the license file or anything signed) and, for changes, the
fields that changed as they were before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.events.service import record_event
from backplane.licenses.models import License, LicenseNotice

# What a change event compares: the fields a customer sees change.
WATCHED = ("tier", "seats", "is_active", "status", "expiry_date", "metadata")


def snapshot(license_: License) -> dict[str, Any]:
    from backplane.licenses.service import license_read  # service imports this module

    return license_read(license_).model_dump(mode="json")


def announce_created(session: AsyncSession, license_: License) -> None:
    data = {"license": snapshot(license_), "previous": None}
    record_event(session, license_.organization_id, "license.created", data, livemode=license_.livemode)


def announce_change(session: AsyncSession, license_: License, before: dict[str, Any]) -> None:
    """After a change: `license.suspended` when it was just suspended, else `license.updated` if any
    watched field changed (nothing is recorded for a change that changed nothing)."""
    after = snapshot(license_)
    previous = {name: before[name] for name in WATCHED if before[name] != after[name]}
    if not previous:
        return
    suspended = before["status"] != "suspended" and after["status"] == "suspended"
    event_type = "license.suspended" if suspended else "license.updated"
    data = {"license": after, "previous": previous}
    record_event(session, license_.organization_id, event_type, data, livemode=license_.livemode)


EXPIRING_WINDOWS = ((1, "expiring_1d"), (7, "expiring_7d"))  # nearest first
EXPIRED_LOOKBACK = timedelta(days=7)  # an expiry older than this (e.g. before this cron existed) is not news


def _notice_kind(expiry: datetime, now: datetime) -> tuple[str, int | None] | None:
    if expiry <= now:
        return ("expired", None) if expiry > now - EXPIRED_LOOKBACK else None
    for days, kind in EXPIRING_WINDOWS:
        if expiry <= now + timedelta(days=days):
            return kind, days
    return None


async def announce_expiry(session: AsyncSession, now: datetime) -> int:
    """The daily cron's work: `license.expiring` for each active license whose expiry is within 7 days
    (then within 1 day), `license.expired` for each that expired in the last 7 days, each once per
    license and expiry date (a `license_notices` row, inserted first, says it was recorded)."""
    candidates = await session.scalars(
        select(License)
        .where(
            License.expiry_date.is_not(None),
            License.expiry_date > now - EXPIRED_LOOKBACK,
            License.expiry_date <= now + timedelta(days=EXPIRING_WINDOWS[-1][0]),
            License.is_active.is_(True),
        )
        .order_by(License.expiry_date)
    )
    recorded = 0
    for license_ in candidates.all():
        assert license_.expiry_date is not None
        found = _notice_kind(license_.expiry_date, now)
        if found is None:
            continue
        kind, days = found
        inserted = await session.scalar(
            pg_insert(LicenseNotice)
            .values(license_id=license_.id, kind=kind, expiry_date=license_.expiry_date, created_at=now)
            .on_conflict_do_nothing()
            .returning(LicenseNotice.kind)
        )
        if inserted is None:
            continue  # already recorded
        if days is None:
            data: dict[str, Any] = {"license": snapshot(license_)}
            record_event(session, license_.organization_id, "license.expired", data, livemode=license_.livemode)
        else:
            data = {"license": snapshot(license_), "days_before": days}
            record_event(session, license_.organization_id, "license.expiring", data, livemode=license_.livemode)
        recorded += 1
    return recorded
