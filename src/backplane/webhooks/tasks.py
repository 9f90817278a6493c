"""arq tasks of webhooks. The worker keeps one HTTP client for deliveries in `ctx["webhook_http"]`."""

from __future__ import annotations

from typing import Any

from backplane.core.db import utcnow
from backplane.webhooks import delivery
from backplane.workers.context import session_scope


async def deliver_task(ctx: dict[str, Any], delivery_id: str) -> str | None:
    """`webhooks.deliver`: one attempt of one delivery (queued by dispatch, by a retry or a redelivery)."""
    return await delivery.attempt(
        ctx["sessionmaker"], ctx["redis"], ctx["webhook_http"], ctx["settings"], delivery_id, now=utcnow()
    )


async def dispatch_task(ctx: dict[str, Any]) -> int:
    """Cron `webhooks.dispatch`: new events become deliveries, in batches of one transaction each."""
    total = 0
    while True:
        async with session_scope(ctx) as session:
            handled = await delivery.dispatch(session, ctx["redis"], utcnow())
        total += handled
        if handled < delivery.DISPATCH_BATCH:
            return total


async def sweep_task(ctx: dict[str, Any]) -> int:
    """Cron `webhooks.sweep`: deliveries whose queued attempt was lost are queued again."""
    async with session_scope(ctx) as session:
        return await delivery.sweep(session, ctx["redis"], utcnow())
