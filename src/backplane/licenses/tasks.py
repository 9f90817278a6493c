from __future__ import annotations

from typing import Any

from backplane.core import metrics
from backplane.core.db import utcnow
from backplane.licenses.events import announce_expiry
from backplane.licenses.leases import Leases
from backplane.licenses.models import SessionEnd
from backplane.licenses.seats import record_ended_batch
from backplane.workers.context import session_scope


async def record_ended_sessions_task(ctx: dict[str, Any]) -> int:
    """Cron: end the leases whose time is up and write every ended lease into its history."""
    leases: Leases = ctx["leases"]
    await leases.sweep_expired()
    total = 0
    while True:
        async with session_scope(ctx) as session:
            ended = await record_ended_batch(session, leases)
        if not ended:
            return total
        await leases.ack_ended(len(ended))  # only after the history is committed
        metrics.LEASE_EXPIRIES.inc(sum(1 for lease in ended if lease.reason == SessionEnd.expired))
        total += len(ended)


async def announce_expiry_task(ctx: dict[str, Any]) -> int:
    """Daily cron: `license.expiring` and `license.expired`, once each per license and expiry date."""
    async with session_scope(ctx) as session:
        return await announce_expiry(session, utcnow())
