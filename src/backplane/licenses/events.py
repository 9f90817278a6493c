"""The licenses' platform events: `license.created`, `license.updated`, `license.suspended`.

Their `data` is the license as the API shows it (`LicenseRead`: the key string is the customer's own
product key and is shown there too; never the license file or anything signed) and, for changes, the
fields that changed as they were before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.events.service import record_event
from backplane.licenses.models import License

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
