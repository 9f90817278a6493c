"""Files: receive, list, read, delete. Bytes live in `Storage`; rows in PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.errors import InvalidInput, NotFound
from backplane.core.ids import new_id
from backplane.files.events import announce_ready
from backplane.files.models import File, Upload
from backplane.files.receive import StoredFile, receive_multipart, too_large, unsupported
from backplane.files.repository import FileRepository
from backplane.files.schemas import parse_metadata
from backplane.files.storage import Storage
from backplane.files.types import AGENT_FILES, FileType


def new_file_id() -> str:
    return new_id("file")


def storage_key(principal: Principal, file_id: str) -> str:
    return f"{principal.organization_id}/{file_id}"


def upload_limit(plan_max: int, agent_id: str | None) -> int:
    """The smaller of the plan's and the agent's limits."""
    if agent_id is None:
        return plan_max
    return min(plan_max, AGENT_FILES[agent_id][1])


def check_agent(stored: StoredFile, agent_id: str | None) -> None:
    check_agent_limits(stored.file_type, stored.size, stored.filename, agent_id)


def check_agent_limits(file_type: FileType, size: int, filename: str, agent_id: str | None) -> None:
    """The agent's types and size limit (the platform guide's table), when an agent is named."""
    if agent_id is None:
        return
    types, limit = AGENT_FILES[agent_id]
    if file_type.name not in types:
        raise unsupported(filename)
    if size > limit:
        raise too_large(limit)


async def upload(
    session: AsyncSession,
    storage: Storage,
    principal: Principal,
    content_type: str,
    body: AsyncIterator[bytes],
    *,
    plan_max: int,
) -> File:
    """`POST /v1/files`: fields `file` (required), `metadata` (JSON object), `agent_id` (optional)."""

    def new_file() -> tuple[str, str]:
        file_id = new_file_id()
        return file_id, storage_key(principal, file_id)

    # The agent, when named, may lower the limit; its field usually precedes the file part, but
    # the limit is checked again after the whole form is read in case it did not.
    form = await receive_multipart(content_type, body, storage, file_fields={"file"}, new_file=new_file, limit=plan_max)
    try:
        if not form.files:
            raise InvalidInput({"file": ["This field is required."]})
        agent_id = form.fields.get("agent_id") or None
        if agent_id is not None and agent_id not in AGENT_FILES:
            raise InvalidInput({"agent_id": [f"Unknown agent; one of {', '.join(sorted(AGENT_FILES))}."]})
        try:
            metadata = parse_metadata(form.fields.get("metadata"))
        except ValueError as exc:
            raise InvalidInput({"metadata": [str(exc)]}) from exc
        [stored] = form.files
        check_agent(stored, agent_id)
        await stored.writer.commit()
    except BaseException:
        await form.abort()
        raise
    file = File(
        id=stored.file_id,
        organization_id=principal.organization_id,
        livemode=principal.livemode,
        filename=stored.filename[:255],
        content_type=stored.file_type.content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        status="ready",
        metadata_=metadata,
        storage_key=stored.key,
    )
    try:
        FileRepository(session, principal.organization_id, principal.livemode).add(file)
        await session.flush()
    except BaseException:
        await storage.delete(stored.key)
        raise
    announce_ready(session, file)
    return file


async def get_file(session: AsyncSession, principal: Principal, file_id: str, *, ready: bool = False) -> File:
    file = await FileRepository(session, principal.organization_id, principal.livemode).get_by_public_id(file_id)
    if file is None or (ready and file.status != "ready"):
        raise NotFound("No file with this id.")
    return file


async def delete_file(session: AsyncSession, storage: Storage, principal: Principal, file_id: str) -> None:
    file = await FileRepository(session, principal.organization_id, principal.livemode).get_by_public_id(
        file_id, for_update=True
    )
    if file is None:
        raise NotFound("No file with this id.")
    # A multipart upload's pending file: its parts go too (its `uploads` row goes with the file's).
    upload_stmt = select(Upload).where(Upload.file_id == file.id, Upload.status == "uploading")
    upload = (await session.execute(upload_stmt)).scalar_one_or_none()
    await session.delete(file)
    await session.flush()
    if upload is not None:
        await storage.abort_parts(file.storage_key, upload.storage_upload_id)
    await storage.delete(file.storage_key)
