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

from backplane.core.db import utcnow
from backplane.events.service import new_event_id
from backplane.licenses.models import SessionEnd


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def acquired_event_row(history: dict[str, Any]) -> dict[str, Any]:
    """The `events` row of an acquire, from its history row (no IP address: the event is about the seat)."""
    return {
        "id": new_event_id(),
        "organization_id": history["organization_id"],
        "type": "seat.acquired",
        "data": {
            "session_id": str(history["id"]),
            "license_id": str(history["license_id"]),
            "hardware_id": history["hardware_id"],
            "client_version": history.get("client_version"),
            "acquired_at": _iso(history["acquired_at"]),
        },
        "livemode": history["livemode"],
        "created_at": history["acquired_at"],
        "trace_context": None,
    }


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
