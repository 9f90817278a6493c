"""Resumable multipart uploads: `POST /v1/files/uploads`, then the parts, in any order and in parallel,
then `complete`.

An upload is a pending file (the row `confirm` knows) plus an `uploads` row naming its part size and,
with S3, the bucket's multipart upload. The parts live in the storage only, which is what
`GET /v1/files/uploads/{id}` reports as received, so a client that crashed asks and sends the rest:
- S3: each part URL is the bucket's own pre-signed UploadPart URL (its Content-Length signed); the
  bytes never pass through this service, and complete is CompleteMultipartUpload.
- Local storage: each part URL is this service's `PUT /v1/files/uploads/{id}/parts/{n}`, signed with
  an HMAC of `upload-part.<upload id>.<n>.<expires>` under SECRET_KEY; the part streams to a file of
  its own, and complete concatenates them, streaming.
Complete then checks the whole file as confirm does (`presigned.accept`: size, type from its bytes)
and the plan's and agent's limits. Uploads not completed by `expires_at` (UPLOAD_EXPIRY_HOURS) are
aborted with their parts by the `files.cleanup_pending` cron.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from backplane.core.ids import is_id, new_id
from backplane.files.events import announce_ready
from backplane.files.models import File, Upload
from backplane.files.presigned import accept
from backplane.files.receive import too_large
from backplane.files.repository import FileRepository, UploadRepository
from backplane.files.schemas import MAX_PARTS, ReceivedPart, UploadCreate, UploadPart, UploadRead
from backplane.files.service import check_agent_limits, new_file_id, storage_key, upload_limit
from backplane.files.storage import Part, Storage
from backplane.files.types import BY_CONTENT_TYPE, HEAD_BYTES


class PartUrlInvalid(Forbidden):
    default_message = "This part URL is invalid or has expired. GET /v1/files/uploads/{id} gives fresh ones."


class PartSizeMismatch(AppError):
    status_code, code, title = 422, "VALIDATION_ERROR", "Validation error"

    def __init__(self, number: int, expected: int) -> None:
        message = f"Part {number} must be exactly {expected} bytes; it was discarded."
        super().__init__(message, details={"fields": {"body": [message]}})


@dataclass
class Refused(Exception):
    """Complete refused the file: its bytes and rows are gone, to be committed before `error` is raised."""

    error: AppError


def _part_signature(settings: Settings, upload_id: str, number: int, expires: int) -> str:
    message = f"upload-part.{upload_id}.{number}.{expires}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def part_size_of(upload: Upload, declared: int, number: int) -> int:
    """Every part is `part_size` bytes but the last, which takes the rest."""
    if number < upload.part_count:
        return upload.part_size
    return declared - upload.part_size * (upload.part_count - 1)


async def create(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    principal: Principal,
    body: UploadCreate,
    *,
    plan_max: int,
) -> tuple[Upload, File]:
    if body.content_type not in BY_CONTENT_TYPE:
        raise InvalidInput({"content_type": [f"Not a supported type; one of {', '.join(sorted(BY_CONTENT_TYPE))}."]})
    limit = upload_limit(plan_max, body.agent_id)
    if body.size_bytes > limit:
        raise too_large(limit)
    part_count = math.ceil(body.size_bytes / body.part_size)
    if part_count > MAX_PARTS:
        raise InvalidInput(
            {
                "part_size": [
                    f"At most {MAX_PARTS} parts: use parts of at least {math.ceil(body.size_bytes / MAX_PARTS)} bytes."
                ]
            }
        )
    file_id = new_file_id()
    key = storage_key(principal, file_id)
    file = File(
        id=file_id,
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        filename=body.filename,
        content_type=body.content_type,
        size_bytes=0,
        status="pending",
        storage_key=key,
        declared_size_bytes=body.size_bytes,
    )
    FileRepository(session, principal.organization_id, principal.livemode).add(file)
    await session.flush()
    upload = Upload(
        id=new_id("upl"),
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        file_id=file_id,
        agent_id=body.agent_id,
        part_size=body.part_size,
        part_count=part_count,
        status="uploading",
        expires_at=utcnow() + timedelta(hours=settings.upload_expiry_hours),
        created_at=utcnow(),
    )
    # Started last: a failure before it leaves nothing in the storage. (One after it, before the commit,
    # leaves an S3 multipart upload without a row: the cron's `sweep_stray_parts` aborts it.)
    upload.storage_upload_id = await storage.start_parts(key)
    UploadRepository(session, principal.organization_id, principal.livemode).add(upload)
    await session.flush()
    return upload, file


async def get(session: AsyncSession, principal: Principal, upload_id: str, *, for_update: bool = False) -> Upload:
    upload = await UploadRepository(session, principal.organization_id, principal.livemode).get_by_public_id(
        upload_id, for_update=for_update
    )
    if upload is None:
        raise NotFound("No upload with this id.")
    return upload


async def _file(session: AsyncSession, upload: Upload, *, for_update: bool = False) -> File:
    stmt = select(File).where(File.id == upload.file_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one()


async def read(
    session: AsyncSession, storage: Storage, settings: Settings, upload: Upload, file: File | None = None
) -> UploadRead:
    """The upload, every part with a fresh URL, and the parts the storage holds."""
    file = file or await _file(session, upload)
    declared = file.declared_size_bytes or 0
    parts: list[UploadPart] = []
    received: list[ReceivedPart] = []
    if upload.status == "uploading":
        for number in range(1, upload.part_count + 1):
            size = part_size_of(upload, declared, number)
            url = await storage.presigned_part(
                file.storage_key, upload.storage_upload_id, number, size=size, expires_at=upload.expires_at
            )
            if url is None:
                expires = int(upload.expires_at.timestamp())
                signature = _part_signature(settings, upload.id, number, expires)
                base = settings.public_base_url.rstrip("/")
                url = f"{base}/v1/files/uploads/{upload.id}/parts/{number}?expires={expires}&signature={signature}"
            parts.append(UploadPart(part_number=number, size_bytes=size, upload_url=url))
        stored = await storage.list_parts(file.storage_key, upload.storage_upload_id)
        received = [ReceivedPart(part_number=p.number, size_bytes=p.size) for p in stored]
    return UploadRead(
        id=upload.id,
        file_id=file.id,
        filename=file.filename,
        content_type=file.content_type,
        size_bytes=declared,
        part_size=upload.part_size,
        status="completed" if upload.status == "completed" else "uploading",
        expires_at=upload.expires_at,
        parts=parts,
        received=received,
        created_at=upload.created_at,
    )


async def check_part_url(
    session: AsyncSession, settings: Settings, upload_id: str, number: int, *, expires: int, signature: str
) -> tuple[Upload, File, int]:
    """The upload a signed part URL reaches, and the exact size of its part; refused when the URL was not
    signed by this service for this upload and part, has expired, or the upload no longer takes parts."""
    expected = _part_signature(settings, upload_id, number, expires)
    # Compared as bytes: `compare_digest` refuses str with non-ASCII characters (a TypeError, a 500).
    if not hmac.compare_digest(expected.encode(), signature.encode()) or expires < int(utcnow().timestamp()):
        raise PartUrlInvalid()
    upload = (
        (await session.execute(select(Upload).where(Upload.id == upload_id))).scalar_one_or_none()
        if is_id(upload_id, "upl")
        else None
    )
    if upload is None or not 1 <= number <= upload.part_count:
        raise NotFound("No upload with this id.")
    if upload.status != "uploading" or upload.expires_at < utcnow():
        raise Conflict("This upload no longer takes parts.")
    file = await _file(session, upload)
    return upload, file, part_size_of(upload, file.declared_size_bytes or 0, number)


async def receive_part(storage: Storage, key: str, number: int, size: int, body: AsyncIterator[bytes]) -> ReceivedPart:
    """Stream one part to the storage (local only); it must be exactly `size` bytes, or nothing is kept."""
    writer = await storage.part_writer(key, number)
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > size:
                raise PartSizeMismatch(number, size)
            await writer.write(chunk)
        if received != size:
            raise PartSizeMismatch(number, size)
    except BaseException:
        await writer.abort()
        raise
    await writer.commit()
    return ReceivedPart(part_number=number, size_bytes=size)


async def still_uploading(session: AsyncSession, upload_id: str) -> bool:
    status = await session.scalar(select(Upload.status).where(Upload.id == upload_id))
    return status == "uploading"


async def complete(
    session: AsyncSession, storage: Storage, principal: Principal, upload_id: str, *, plan_max: int
) -> File:
    """Assemble the parts and check the file as confirm does, plus the plan's and agent's limits.

    A refusal after assembly deletes the bytes and both rows and raises `Refused` (the parts are gone,
    so the upload cannot be completed again)."""
    upload = await get(session, principal, upload_id, for_update=True)
    file = await _file(session, upload, for_update=True)
    if upload.status == "completed":
        return file
    if upload.expires_at < utcnow():
        raise Conflict("This upload has expired.")
    declared = file.declared_size_bytes or 0
    parts = await storage.list_parts(file.storage_key, upload.storage_upload_id)
    have = {part.number: part for part in parts}
    missing = [
        n for n in range(1, upload.part_count + 1) if n not in have or have[n].size != part_size_of(upload, declared, n)
    ]
    if missing:
        shown = ", ".join(str(n) for n in missing[:20]) + (", ..." if len(missing) > 20 else "")
        raise Conflict(f"Parts not received yet: {shown}.", details={"missing_parts": missing[:1000]})
    ordered: list[Part] = [have[n] for n in range(1, upload.part_count + 1)]
    joined = await storage.assemble(file.storage_key, upload.storage_upload_id, ordered, HEAD_BYTES)
    file.size_bytes, file.sha256, file.uploaded_at = joined.size, joined.sha256, utcnow()
    try:
        await accept(storage, file, joined.head)
        check_agent_limits(BY_CONTENT_TYPE[file.content_type], file.size_bytes, file.filename, upload.agent_id)
        if file.size_bytes > plan_max:  # the plan may have changed since the upload began
            raise too_large(plan_max)
    except AppError as error:
        await storage.delete(file.storage_key)
        await _delete_rows(session, upload, file)
        raise Refused(error) from error
    upload.status = "completed"
    await session.flush()
    announce_ready(session, file)
    return file


async def abort(session: AsyncSession, storage: Storage, principal: Principal, upload_id: str) -> None:
    upload = await get(session, principal, upload_id, for_update=True)
    file = await _file(session, upload, for_update=True)
    if upload.status == "completed":
        raise Conflict("This upload is completed; delete its file with DELETE /v1/files/{id}.")
    await _discard(session, storage, upload, file)


async def _discard(session: AsyncSession, storage: Storage, upload: Upload, file: File) -> None:
    await storage.abort_parts(file.storage_key, upload.storage_upload_id)
    await storage.delete(file.storage_key)
    await _delete_rows(session, upload, file)


async def _delete_rows(session: AsyncSession, upload: Upload, file: File) -> None:
    # The upload first, flushed alone: with no ORM relationship between them, one flush may delete the
    # file first, and the database's cascade would take the upload before its own DELETE.
    await session.delete(upload)
    await session.flush()
    await session.delete(file)
    await session.flush()


async def cleanup_expired(session: AsyncSession, storage: Storage, now: datetime, limit: int = 200) -> int:
    """Abort uploads not completed before `expires_at`, with their parts and pending file (a batch)."""
    stmt = (
        select(Upload)
        .where(Upload.status == "uploading", Upload.expires_at < now)
        .order_by(Upload.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stale = list((await session.execute(stmt)).scalars())
    for upload in stale:
        await _discard(session, storage, upload, await _file(session, upload, for_update=True))
    return len(stale)


async def sweep_stray_parts(session: AsyncSession, storage: Storage, before: datetime) -> int:
    """Free parts that no upload in progress owns: a part that finished streaming just after its upload was
    completed or aborted (local storage), or an S3 multipart upload begun for a request whose transaction
    then failed. Only those begun or last changed before `before`, so that rows being committed are seen."""
    stray = 0
    found = await storage.parts_before(before)
    for start in range(0, len(found), 500):
        batch = found[start : start + 500]
        ids = [key.rsplit("/", 1)[-1] for key, _ in batch]  # keys end with the file id (service.storage_key)
        query = select(Upload.file_id, Upload.storage_upload_id).where(
            Upload.file_id.in_(ids), Upload.status == "uploading"
        )
        live = {(file_id, upload_id) for file_id, upload_id in (await session.execute(query)).all()}
        for key, upload_id in batch:
            if (key.rsplit("/", 1)[-1], upload_id) not in live:
                await storage.abort_parts(key, upload_id)
                stray += 1
    return stray
