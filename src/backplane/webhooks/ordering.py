"""Ordered delivery per resource: an endpoint with `ordering: per_resource` receives the events about one
resource (its deliveries' `resource_id`, events/resources.py) one after another, in the order the
events were created.

The rule lives in PostgreSQL, so it holds whichever worker (or pump batch) attempts what: a delivery is
not attempted while an earlier event's delivery for the same endpoint and resource is still pending
(due, being retried, or itself waiting). The claim (`blocked`) finds such a delivery and parks it:
pending with no `next_attempt_at`, which the sweep's overdue scan skips. When a delivery of an ordered
endpoint ends (delivered, or failed for good), `wake_next` makes the earliest parked delivery of its
resource due again. The two take a transaction-scoped advisory lock per (endpoint, resource) around their
reads, so that a delivery is never parked just after the one it waited for ended (each sees what the
other committed). `stranded` is the safety net the sweep runs: parked deliveries that nothing blocks
any more (a wake-up lost with a worker) are made due again.

Deliveries of unordered endpoints never come here: they keep their speed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

Key = tuple[str, str]  # (endpoint id, resource id)

# Lock the keys in one order (their hash's) in every transaction: two claims, or a claim and a
# completion, never wait on each other in a cycle.
_LOCK = text(
    "SELECT pg_advisory_xact_lock(h) FROM "
    "(SELECT DISTINCT hashtextextended(k, 7) AS h FROM unnest(:keys) AS k ORDER BY h) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(String)))

_EARLIER_PENDING = """
    SELECT 1 FROM webhook_deliveries AS e JOIN events AS ee ON ee.id = e.event_id
    WHERE e.endpoint_id = d.endpoint_id AND e.resource_id = d.resource_id AND e.status = 'pending'
        AND e.id <> d.id AND (ee.created_at, ee.id) < (de.created_at, de.id)
"""

_BLOCKED = text(f"""
SELECT d.id FROM webhook_deliveries AS d JOIN events AS de ON de.id = d.event_id
WHERE d.id = ANY(:ids) AND EXISTS ({_EARLIER_PENDING})
""").bindparams(bindparam("ids", type_=ARRAY(String)))

_WAKE_NEXT = text("""
UPDATE webhook_deliveries SET next_attempt_at = :now
WHERE id IN (
    SELECT w.id FROM webhook_deliveries AS w JOIN events AS we ON we.id = w.event_id
    WHERE w.endpoint_id = :endpoint_id AND w.resource_id = :resource_id AND w.status = 'pending'
        AND w.next_attempt_at IS NULL
    ORDER BY we.created_at, we.id
    LIMIT 1
    FOR UPDATE OF w SKIP LOCKED
)
RETURNING id, endpoint_id, attempt_count
""")

_STRANDED = text(f"""
UPDATE webhook_deliveries SET next_attempt_at = :now
WHERE id IN (
    SELECT d.id FROM webhook_deliveries AS d JOIN events AS de ON de.id = d.event_id
    WHERE d.status = 'pending' AND d.next_attempt_at IS NULL AND d.resource_id IS NOT NULL
        AND d.endpoint_id IS NOT NULL AND NOT EXISTS ({_EARLIER_PENDING})
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
)
RETURNING id, endpoint_id, attempt_count
""")


async def lock(session: AsyncSession, keys: Iterable[Key]) -> None:
    """Hold (endpoint, resource) keys until the transaction ends."""
    texts = sorted({f"{endpoint_id}:{resource_id}" for endpoint_id, resource_id in keys})
    if texts:
        await session.execute(_LOCK, {"keys": texts})


async def blocked(session: AsyncSession, deliveries: list[tuple[str, Key]]) -> set[str]:
    """Of these (delivery id, key) pairs, the deliveries an earlier pending one of their key holds back.
    Locks their keys first, so the answer stands until the transaction ends."""
    if not deliveries:
        return set()
    await lock(session, (key for _, key in deliveries))
    rows = await session.execute(_BLOCKED, {"ids": [delivery_id for delivery_id, _ in deliveries]})
    return {row[0] for row in rows}


async def wake_next(session: AsyncSession, keys: Iterable[Key], now: datetime) -> list[tuple[str, str, int]]:
    """Make the earliest parked delivery of each key due at `now`; (id, endpoint id, attempts made) of each
    (call after the deliveries that ended were updated, in the same transaction)."""
    wanted = sorted(set(keys))
    await lock(session, wanted)
    woken: list[tuple[str, str, int]] = []
    for endpoint_id, resource_id in wanted:
        rows = await session.execute(_WAKE_NEXT, {"endpoint_id": endpoint_id, "resource_id": resource_id, "now": now})
        woken.extend((row[0], row[1], row[2]) for row in rows)
    return woken


async def stranded(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str, int]]:
    """Parked deliveries that nothing holds back any more, made due at `now` (the sweep queues them)."""
    rows = await session.execute(_STRANDED, {"now": now, "limit": limit})
    return [(row[0], row[1], row[2]) for row in rows]
