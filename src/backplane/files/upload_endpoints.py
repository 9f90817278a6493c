"""`/v1/files/uploads`: resumable multipart uploads (files/uploads.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from backplane.access.requirements import Idempotent, Public, Reader, Writer
from backplane.billing.deps import PlanDep, PlatformLimit
from backplane.core.body_limit import streams_body
from backplane.core.db import SessionDep, commit
from backplane.core.deps import SettingsDep
from backplane.core.errors import Conflict
from backplane.core.openapi import platform_errors
from backplane.core.ratelimit import Limit, per_ip
from backplane.files import uploads
from backplane.files.deps import StorageDep
from backplane.files.endpoints import _read as read_file
from backplane.files.schemas import FileRead, ReceivedPart, UploadCreate, UploadRead

router = APIRouter(
    prefix="/v1/files/uploads",
    tags=["Files"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadRead,
    summary="Start a resumable multipart upload",
    description="Returns every part's URL: PUT each part's raw bytes (exactly `size_bytes`) there, in any order "
    "and in parallel, without a bearer token, before `expires_at` (UPLOAD_EXPIRY_HOURS). With S3 storage the "
    "URLs are the bucket's own pre-signed UploadPart URLs. Then POST `/v1/files/uploads/{id}/complete`.",
    responses={413: {"description": "PAYLOAD_TOO_LARGE"}},
)
async def create_upload(
    body: UploadCreate,
    principal: Writer,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    plan: PlanDep,
) -> UploadRead:
    upload, file = await uploads.create(session, storage, settings, principal, body, plan_max=plan.max_upload_bytes)
    return await uploads.read(session, storage, settings, upload, file)


@router.get(
    "/{upload_id}",
    response_model=UploadRead,
    summary="Get an upload: the parts received, and fresh part URLs",
    description="`received` lists the parts the storage holds in full; a client that lost its place sends the "
    "others (to the URLs in `parts`) and completes.",
)
async def get_upload(
    upload_id: str, principal: Reader, session: SessionDep, storage: StorageDep, settings: SettingsDep
) -> UploadRead:
    upload = await uploads.get(session, principal, upload_id)
    return await uploads.read(session, storage, settings, upload)


@router.post(
    "/{upload_id}/complete",
    response_model=FileRead,
    summary="Complete an upload",
    description="Assembles the parts and checks the file as confirm does: its size, its type detected from its "
    "bytes, the plan's limit and the agent's (if one was named). A refused file is deleted with its upload. "
    "Completing again returns the same file.",
    responses={
        409: {"description": "CONFLICT: parts missing (`details.missing_parts`), or the upload expired"},
        413: {"description": "PAYLOAD_TOO_LARGE"},
        415: {"description": "UNSUPPORTED_FILE_TYPE"},
    },
)
async def complete_upload(
    upload_id: str, principal: Writer, session: SessionDep, storage: StorageDep, plan: PlanDep
) -> FileRead:
    try:
        file = await uploads.complete(session, storage, principal, upload_id, plan_max=plan.max_upload_bytes)
    except uploads.Refused as refused:
        await commit(session)  # the refused file's rows are deleted with its bytes
        raise refused.error from None
    return read_file(file)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Abort an upload",
    description="Deletes every part received and the pending file.",
    responses={409: {"description": "CONFLICT: already completed"}},
)
async def abort_upload(upload_id: str, principal: Writer, session: SessionDep, storage: StorageDep) -> None:
    await uploads.abort(session, storage, principal, upload_id)


# Per client address, like the pre-signed PUT's limit but 20 a second: a 500 MB file is 100 parts of 5 MB,
# sent in parallel, and a forged URL costs one HMAC to refuse.
PART_UPLOADS = Limit("upload_parts", 1200)

# The PUT target of local storage's part URLs: no bearer token (the URL's signature is the credential).
signed_parts = APIRouter(prefix="/v1/files/uploads", tags=["Files"], dependencies=[Depends(per_ip(PART_UPLOADS))])


@signed_parts.put(
    "/{upload_id}/parts/{part_number}",
    response_model=ReceivedPart,
    summary="Upload one part to its signed URL (local storage)",
    responses=platform_errors(403, 404, 409, 422, 429),
    dependencies=[Public("the signed URL is the credential")],
)
@streams_body()  # raw bytes of any type, exactly the part's size
async def put_part(
    upload_id: str,
    part_number: Annotated[int, Path(ge=1, le=10_000)],
    request: Request,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> ReceivedPart:
    upload, file, size = await uploads.check_part_url(
        session, settings, upload_id, part_number, expires=expires, signature=signature
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise uploads.PartSizeMismatch(part_number, size)
    key = file.storage_key
    await commit(session)  # no transaction stays open while the part streams in
    received = await uploads.receive_part(storage, key, part_number, size, request.stream())
    if not await uploads.still_uploading(session, upload.id):
        # Aborted (or expired and cleaned up) while this part streamed in: it reaches nothing.
        await storage.abort_parts(key, upload.storage_upload_id)
        raise Conflict("This upload no longer takes parts.")
    return received
