from __future__ import annotations

from datetime import timedelta
from typing import Any

from backplane.core.db import utcnow
from backplane.files.presigned import cleanup_pending, sweep_stray_uploads
from backplane.files.storage import Storage
from backplane.files.uploads import cleanup_expired, sweep_stray_parts
from backplane.workers.context import session_scope

# Bytes younger than this are left to the next run: their file's row may not be committed yet.
STRAY_UPLOAD_GRACE = timedelta(minutes=5)


async def cleanup_pending_task(ctx: dict[str, Any]) -> int:
    """Cron: abort multipart uploads not completed within UPLOAD_EXPIRY_HOURS (their parts and pending
    file), remove pre-signed uploads never confirmed before their URL expired, then parts no upload in
    progress owns, and bytes PUT to a storage's own URL (S3) that reach no pending file (PUT again after
    confirm, or after a delete)."""
    storage: Storage = ctx["storage"]
    total = 0
    while True:
        async with session_scope(ctx) as session:
            aborted = await cleanup_expired(session, storage, utcnow())
        total += aborted
        if aborted == 0:
            break
    while True:
        async with session_scope(ctx) as session:
            removed = await cleanup_pending(session, storage, utcnow())
        total += removed
        if removed == 0:
            break
    async with session_scope(ctx) as session:
        total += await sweep_stray_parts(session, storage, utcnow() - STRAY_UPLOAD_GRACE)
    async with session_scope(ctx) as session:
        return total + await sweep_stray_uploads(session, storage, utcnow() - STRAY_UPLOAD_GRACE)
