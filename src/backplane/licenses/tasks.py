from __future__ import annotations

from typing import Any

from backplane.licenses.leases import Leases
from backplane.licenses.seats import record_ended_batch
from backplane.workers.context import session_scope


async def record_ended_sessions_task(ctx: dict[str, Any]) -> int:
    """Cron: end the leases whose time is up and write every ended lease into its history."""
    leases: Leases = ctx["leases"]
    await leases.sweep_expired()
    total = 0
    while True:
        async with session_scope(ctx) as session:
            count = await record_ended_batch(session, leases)
        if not count:
            return total
        await leases.ack_ended(count)  # only after the history is committed
        total += count
