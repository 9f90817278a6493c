"""`file.ready`: a file's bytes were received and checked (a direct upload, a confirmed pre-signed
upload, a completed multipart upload). Its `data` is the file as the API shows it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.events.service import record_event
from backplane.files.models import File
from backplane.files.schemas import FileRead


def file_read(file: File) -> FileRead:
    return FileRead(
        id=file.id,
        filename=file.filename,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        status=file.status,
        metadata=file.metadata_,
        livemode=file.livemode,
        created_at=file.created_at,
    )


def announce_ready(session: AsyncSession, file: File) -> None:
    data = file_read(file).model_dump(mode="json")
    record_event(session, file.organization_id, "file.ready", data, livemode=file.livemode)
