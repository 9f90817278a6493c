from __future__ import annotations

from typing import Any

from backplane.core.db import utcnow
from backplane.files.presigned import cleanup_pending
from backplane.files.storage import Storage
from backplane.workers.context import session_scope


async def cleanup_pending_task(ctx: dict[str, Any]) -> int:
    """Cron: remove pre-signed uploads never confirmed before their URL expired."""
    storage: Storage = ctx["storage"]
    total = 0
    while True:
        async with session_scope(ctx) as session:
            removed = await cleanup_pending(session, storage, utcnow())
        total += removed
        if removed == 0:
            return total
