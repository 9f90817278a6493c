from __future__ import annotations

from typing import Any

from backplane.core import metrics
from backplane.core.db import utcnow
from backplane.licenses.events import announce_expiry
from backplane.licenses.leases import Leases
from backplane.licenses.models import SessionEnd
from backplane.licenses.seats import record_ended_batch
from backplane.workers.context import session_scope

MAX_SWEEPS = 100  # steps of ending leases in one run of the cron; what is left waits for the next run


async def record_ended_sessions_task(ctx: dict[str, Any]) -> int:
    """Cron: end the leases whose time is up and write every ended lease into its history. Leases
    are ended a bounded step at a time (`Leases.sweep_expired`), each step's history written before
    the next, so a fleet that expired at once never holds Redis or this worker for long."""
    leases: Leases = ctx["leases"]
    total = 0
    for _ in range(MAX_SWEEPS):
        swept = await leases.sweep_expired()
        while True:
            async with session_scope(ctx) as session:
                ended = await record_ended_batch(session, leases)
            if not ended:
                break
            await leases.ack_ended(len(ended))  # only after the history is committed
            metrics.LEASE_EXPIRIES.inc(sum(1 for lease in ended if lease.reason == SessionEnd.expired))
            total += len(ended)
        if not swept:
            break
    return total


async def announce_expiry_task(ctx: dict[str, Any]) -> int:
    """Daily cron: `license.expiring` and `license.expired`, once each per license and expiry date."""
    async with session_scope(ctx) as session:
        return await announce_expiry(session, utcnow())
