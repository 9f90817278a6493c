"""Pre-signed uploads: a signed, expiring URL that takes the raw bytes with a PUT, then `confirm`.

The storage decides where the URL points (`Storage.presigned_put`):
- Local storage has none, so the URL is this API's own `PUT /v1/files/{id}/upload`: it carries
  `expires` and an HMAC of `<file id>.<expires>` under SECRET_KEY, so it needs no bearer token; a
  Redis flag set with NX makes it work once, and the bytes are checked (size, type) as they arrive.
- S3 gives a pre-signed PUT URL to the bucket with the declared size and type in its signature.
  `confirm` moves the bytes out of the URL's reach (`Storage.take_upload`) and checks that copy:
  its real size and its type detected from its first bytes, as the local PUT does.
Either way `confirm` makes the file ready once; nothing PUT later changes it. Unconfirmed uploads
(and S3 uploads PUT after confirm) are removed by the `files.cleanup_pending` cron.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core import keys
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from backplane.files.events import announce_ready
from backplane.files.models import File
from backplane.files.receive import receive_raw, too_large, unsupported
from backplane.files.repository import FileRepository
from backplane.files.service import new_file_id, storage_key
from backplane.files.storage import Storage
from backplane.files.types import BY_CONTENT_TYPE, HEAD_BYTES, detect

logger = logging.getLogger(__name__)


class UploadUrlInvalid(Forbidden):
    default_message = "This upload URL is invalid or has expired. Request a new one with POST /v1/files/upload-url."


def _signature(settings: Settings, file_id: str, expires: int) -> str:
    message = f"{file_id}.{expires}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


async def create_upload_url(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    *,
    filename: str,
    content_type: str,
    size_bytes: int,
    plan_max: int,
) -> tuple[File, str]:
    if content_type not in BY_CONTENT_TYPE:
        raise InvalidInput({"content_type": [f"Not a supported type; one of {', '.join(sorted(BY_CONTENT_TYPE))}."]})
    if size_bytes > plan_max:
        raise too_large(plan_max)
    file_id = new_file_id()
    key = storage_key(principal, file_id)
    expires_at = utcnow() + timedelta(seconds=settings.upload_url_ttl_seconds)
    file = File(
        id=file_id,
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        filename=filename,
        content_type=content_type,
        size_bytes=0,
        status="pending",
        storage_key=key,
        expires_at=expires_at,
        declared_size_bytes=size_bytes,
    )
    FileRepository(session, principal.organization_id, principal.livemode).add(file)
    await session.flush()
    url = await storage.presigned_put(key, size=size_bytes, content_type=content_type, expires_at=expires_at)
    if url is None:
        expires = int(expires_at.timestamp())
        base = settings.public_base_url.rstrip("/")
        url = f"{base}/v1/files/{file_id}/upload?expires={expires}&signature={_signature(settings, file_id, expires)}"
    return file, url


async def receive_upload(
    session: AsyncSession,
    redis: Redis,
    storage: Storage,
    settings: Settings,
    file_id: str,
    *,
    expires: int,
    signature: str,
    body: AsyncIterator[bytes],
) -> File:
    expected = _signature(settings, file_id, expires)
    # Compared as bytes: `compare_digest` refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(expected.encode(), signature.encode()) or expires < int(utcnow().timestamp()):
        raise UploadUrlInvalid()
    file = (await session.execute(select(File).where(File.id == file_id).with_for_update())).scalar_one_or_none()
    if file is None or file.status != "pending" or file.declared_size_bytes is None:
        raise UploadUrlInvalid()
    ttl = max(1, expires - int(utcnow().timestamp()) + 60)
    if not await redis.set(keys.upload_used(file_id), "1", nx=True, ex=ttl):
        raise Conflict("This upload URL was already used. Request a new one with POST /v1/files/upload-url.")
    stored = await receive_raw(
        body,
        await storage.writer(file.storage_key),
        file_id=file.id,
        key=file.storage_key,
        filename=file.filename,
        limit=file.declared_size_bytes,
    )
    if stored.file_type.content_type != file.content_type:
        await stored.writer.abort()
        raise unsupported(file.filename)
    await stored.writer.commit()
    file.size_bytes = stored.size
    file.sha256 = stored.sha256
    file.uploaded_at = utcnow()
    await session.flush()
    return file


async def confirm(session: AsyncSession, storage: Storage, principal: Principal, file_id: str) -> File:
    file = await FileRepository(session, principal.organization_id, principal.livemode).get_by_public_id(
        file_id, for_update=True
    )
    if file is None:
        raise NotFound("No file with this id.")
    if file.status == "ready":
        return file
    if file.uploaded_at is None:
        # Not PUT through this API: maybe straight to the storage's own URL (S3), unchecked so far.
        direct = await storage.take_upload(file.storage_key, HEAD_BYTES)
        if direct is None:
            raise Conflict("Nothing was uploaded to this file's upload URL yet.")
        file.size_bytes, file.sha256, file.uploaded_at = direct.size, direct.sha256, utcnow()
        head: bytes | None = direct.head
    elif not await storage.exists(file.storage_key):
        raise Conflict("Nothing was uploaded to this file's upload URL yet.")
    else:
        head = None  # checked on the way in
    # A refusal deletes the bytes; the pending row stays until the cleanup cron removes it with its
    # expired URL (an S3 URL still valid may take another PUT, confirmed again).
    await accept(storage, file, head)
    await session.flush()
    announce_ready(session, file)
    return file


async def accept(storage: Storage, file: File, head: bytes | None) -> None:
    """Check received bytes against what was declared: their size, and their type from `head` (None:
    checked on the way in); refused bytes are deleted. Then the file is ready. (Confirm and multipart
    complete.)"""
    if file.size_bytes != file.declared_size_bytes:
        await storage.delete(file.storage_key)
        raise SizeMismatch(file.size_bytes, file.declared_size_bytes or 0)
    if head is not None:
        detected = detect(head, file.filename)
        if detected is None or detected.content_type != file.content_type:
            await storage.delete(file.storage_key)
            raise unsupported(file.filename)
    file.status = "ready"
    file.expires_at = None


class SizeMismatch(AppError):
    status_code, code, title = 422, "VALIDATION_ERROR", "Validation error"

    def __init__(self, received: int, declared: int) -> None:
        message = f"Uploaded {received} bytes but {declared} were declared; the upload was discarded."
        super().__init__(message, details={"fields": {"size_bytes": [message]}})


async def cleanup_pending(session: AsyncSession, storage: Storage, now: datetime, limit: int = 500) -> int:
    """Remove pre-signed uploads never confirmed before their URL expired (a batch of at most `limit`)."""
    stmt = (
        select(File)
        .where(File.status == "pending", File.expires_at < now)
        .order_by(File.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stale = list((await session.execute(stmt)).scalars())
    for file in stale:
        await storage.delete(file.storage_key)
        await session.delete(file)
    await session.flush()
    return len(stale)


async def sweep_stray_uploads(session: AsyncSession, storage: Storage, before: datetime) -> int:
    """Delete bytes PUT to a storage's own pre-signed URL (S3) before `before` whose file is no longer
    pending: PUT again after confirm, or after the file was deleted. The URL may take them until it
    expires; they never reach a file, and the next run deletes them again."""
    stray = 0
    keys = await storage.uploads_before(before)
    for start in range(0, len(keys), 500):
        batch = keys[start : start + 500]
        ids = [key.rsplit("/", 1)[-1] for key in batch]  # keys end with the file id (service.storage_key)
        query = select(File.storage_key).where(File.id.in_(ids), File.status == "pending")
        pending = set((await session.execute(query)).scalars())
        for key in batch:
            if key not in pending:
                await storage.discard_upload(key)
                stray += 1
    return stray


def public(file: File, url: str) -> dict[str, Any]:
    assert file.expires_at is not None
    return {"upload_url": url, "file_id": file.id, "expires_at": file.expires_at}
