"""`/v1/files`: direct (streamed) upload, list, get, download, delete."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse

from backplane.access.requirements import Idempotent, Public, Reader, Writer
from backplane.billing.deps import PlanDep, PlatformLimit
from backplane.core.body_limit import streams_body
from backplane.core.db import SessionDep, commit
from backplane.core.deps import SettingsDep
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, page_params, paginate
from backplane.core.redis import RedisDep
from backplane.files import presigned, service
from backplane.files.deps import StorageDep
from backplane.files.events import file_read
from backplane.files.models import File
from backplane.files.receive import MULTIPART_OVERHEAD, too_large
from backplane.files.repository import FileRepository
from backplane.files.schemas import FileRead, UploadUrlRequest, UploadUrlResponse
from backplane.files.types import BY_CONTENT_TYPE
from backplane.licenses.limits import ValidationLimit

router = APIRouter(
    prefix="/v1/files",
    tags=["Files"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "metadata": {
                            "type": "string",
                            "description": "A JSON object.",
                            "example": '{"source": "user_upload"}',
                        },
                        "agent_id": {
                            "type": "string",
                            "enum": ["maya", "jordan", "sam", "taylor"],
                            "description": "Also apply this agent's types and size limit.",
                        },
                    },
                }
            }
        },
    }
}


_read = file_read  # the file as the API shows it, as its `file.ready` event carries it


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FileRead,
    summary="Upload a file (multipart)",
    description="Streams to storage: the upload is refused with 413 as soon as it crosses the plan's limit "
    "(or at once from Content-Length), and with 415 when its bytes are not a supported type. Nothing partial "
    "is kept.",
    openapi_extra=_UPLOAD_BODY,
    responses={413: {"description": "PAYLOAD_TOO_LARGE"}, 415: {"description": "UNSUPPORTED_FILE_TYPE"}},
)
@streams_body("multipart/form-data")
async def upload_file(
    request: Request,
    principal: Writer,
    session: SessionDep,
    storage: StorageDep,
    plan: PlanDep,
) -> FileRead:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > plan.max_upload_bytes + MULTIPART_OVERHEAD:
        raise too_large(plan.max_upload_bytes)
    await commit(session)  # no transaction stays open while the upload streams in (see jobs/endpoints.py)
    file = await service.upload(
        session,
        storage,
        principal,
        request.headers.get("content-type", ""),
        request.stream(),
        plan_max=plan.max_upload_bytes,
    )
    return _read(file)


@router.post(
    "/upload-url",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadUrlResponse,
    summary="Get a pre-signed upload URL (large files)",
    description="Then PUT the raw bytes to `upload_url` with the declared `Content-Type` (no bearer token; it "
    "expires at `expires_at`) and POST `/v1/files/{id}/confirm`. With S3 storage the URL is the bucket's own "
    "pre-signed URL: it takes exactly `size_bytes` bytes of `content_type`.",
    responses={413: {"description": "PAYLOAD_TOO_LARGE"}},
)
async def create_upload_url(
    body: UploadUrlRequest,
    principal: Writer,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    plan: PlanDep,
) -> UploadUrlResponse:
    file, url = await presigned.create_upload_url(
        session,
        storage,
        settings,
        principal,
        filename=body.filename,
        content_type=body.content_type,
        size_bytes=body.size_bytes,
        plan_max=plan.max_upload_bytes,
    )
    return UploadUrlResponse.model_validate(presigned.public(file, url))


@router.post(
    "/{file_id}/confirm",
    response_model=FileRead,
    summary="Confirm a pre-signed upload",
    description="Checks the uploaded bytes against the declared size and type (detected from the bytes) and makes "
    "the file ready; refused bytes are deleted. Once confirmed, nothing PUT to the upload URL changes the file.",
    responses={409: {"description": "CONFLICT"}, 415: {"description": "UNSUPPORTED_FILE_TYPE"}},
)
async def confirm_upload(file_id: str, principal: Writer, session: SessionDep, storage: StorageDep) -> FileRead:
    return _read(await presigned.confirm(session, storage, principal, file_id))


@router.get("", response_model=Page[FileRead], summary="List files")
async def list_files(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    file_status: Annotated[str | None, Query(alias="status", pattern="^(pending|ready)$")] = None,
) -> Page[FileRead]:
    stmt = FileRepository(session, principal.organization_id, principal.livemode).select()
    if file_status is not None:
        stmt = stmt.where(File.status == file_status)
    rows, cursor = await paginate(session, stmt, page, File.created_at, File.id)
    return Page(data=[_read(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get("/{file_id}", response_model=FileRead, summary="Get a file's details")
async def get_file(file_id: str, principal: Reader, session: SessionDep) -> FileRead:
    return _read(await service.get_file(session, principal, file_id))


@router.get(
    "/{file_id}/content",
    summary="Download a file (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in BY_CONTENT_TYPE
            },
            "description": "The file's bytes, with the type detected at upload.",
        }
    },
)
async def download_file(file_id: str, principal: Reader, session: SessionDep, storage: StorageDep) -> StreamingResponse:
    file = await service.get_file(session, principal, file_id, ready=True)
    return StreamingResponse(
        storage.read(file.storage_key),
        media_type=file.content_type,
        headers={
            "Content-Length": str(file.size_bytes),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}",
            "ETag": f'"{file.sha256}"',
        },
    )


@router.delete("/{file_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a file")
async def delete_file(file_id: str, principal: Writer, session: SessionDep, storage: StorageDep) -> None:
    await service.delete_file(session, storage, principal, file_id)


# The PUT target of pre-signed URLs: no bearer token (the URL's signature is the credential), so it
# is outside the router whose routes authenticate and rate-limit by organization.
signed_uploads = APIRouter(prefix="/v1/files", tags=["Files"], dependencies=[ValidationLimit])


@signed_uploads.put(
    "/{file_id}/upload",
    response_model=FileRead,
    summary="Upload the bytes to a pre-signed URL",
    responses=platform_errors(403, 409, 422),
    dependencies=[Public("the signed URL is the credential")],
)
@streams_body()  # raw bytes of any type, limited to the size the URL was signed for
async def put_upload(
    file_id: str,
    request: Request,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
    session: SessionDep,
    redis: RedisDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> FileRead:
    file = await presigned.receive_upload(
        session, redis, storage, settings, file_id, expires=expires, signature=signature, body=request.stream()
    )
    return _read(file)
