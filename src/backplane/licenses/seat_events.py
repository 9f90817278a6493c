"""`seat.acquired`, `seat.released`, `seat.expired`, made from what the seat paths write anyway.

The seat routes answer from Redis. An acquire's history row is inserted by a batched INSERT
(`repository.session_history`): its `seat.acquired` event is a companion row of that same batch and
transaction, so the route makes no PostgreSQL write of its own for it. Releases and expiries reach
PostgreSQL only through the `licenses.record_ended` cron; their events are written there, one for
each history row that cron actually ends (so once each). Webhook endpoints receive these types only
when they name them (`events.service.OPT_IN_TYPES`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from backplane.core.db import Companion, utcnow
from backplane.events.models import Event
from backplane.events.service import new_event_id
from backplane.licenses.models import SessionEnd


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# An acquire's time as `datetime.isoformat` writes it in UTC (every other event's times are written
# that way): microseconds only when there are some.
_ISO_ACQUIRED_AT = (
    "to_char(acquired_at AT TIME ZONE 'UTC', "
    "CASE WHEN date_part('microseconds', acquired_at AT TIME ZONE 'UTC')::bigint % 1000000 = 0 "
    """THEN 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"' END)"""
)

# The `events` row of an acquire, made by PostgreSQL from its history row in the statement that inserts
# it (no IP address: the event is about the seat). Built there rather than here: serializing its data
# here and sending it as a second set of arrays cost an acquire about 17 of its 310 us of API CPU
# (alternated wrk runs). Every history row the seat route writes names each column used here.
ACQUIRED_EVENT = Companion(
    Event.__table__,  # type: ignore[arg-type]
    columns={
        "organization_id": "organization_id",
        "type": "'seat.acquired'",
        "data": (
            "jsonb_build_object('session_id', id, 'license_id', license_id, 'hardware_id', hardware_id, "
            f"'client_version', client_version, 'acquired_at', {_ISO_ACQUIRED_AT})"
        ),
        "livemode": "livemode",
        "created_at": "acquired_at",
    },
    made={"id": new_event_id},
)


def ended_event(
    session_id: uuid.UUID,
    license_id: uuid.UUID,
    hardware_id: str,
    acquired_at: datetime,
    reason: str,
    ended_at: datetime,
) -> tuple[str, dict[str, Any]]:
    """The type and data of a lease's end: expired (no heartbeat in time) or released (by its client,
    or revoked by an admin: `reason` says which)."""
    event_type = "seat.expired" if reason == SessionEnd.expired else "seat.released"
    return event_type, {
        "session_id": str(session_id),
        "license_id": str(license_id),
        "hardware_id": hardware_id,
        "reason": str(reason),
        "acquired_at": _iso(acquired_at),
        "ended_at": _iso(ended_at or utcnow()),
    }
