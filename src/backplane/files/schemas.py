from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from backplane.core.fields import Name, parse_json_object

MAX_METADATA_BYTES = 16_384


class FileRead(BaseModel):
    id: str = Field(examples=["file_3f9c2a7b1e4d5c6a7b8c9d0e"])
    filename: str
    content_type: str = Field(description="Detected from the file's own bytes.")
    size_bytes: int
    sha256: str | None
    status: Literal["pending", "ready"]
    metadata: dict[str, Any]
    livemode: bool
    created_at: datetime


def parse_metadata(raw: str | None) -> dict[str, Any]:
    return parse_json_object(raw, MAX_METADATA_BYTES)


class UploadUrlRequest(BaseModel):
    filename: Name = Field(max_length=255, examples=["large-video.mp4"])
    content_type: str = Field(max_length=128, examples=["video/mp4"])
    size_bytes: int = Field(gt=0, examples=[500_000_000])


class UploadUrlResponse(BaseModel):
    upload_url: str = Field(
        description="PUT the raw bytes here with the declared Content-Type, without a bearer token, before "
        "`expires_at`; then confirm. Once confirmed, nothing PUT here changes the file."
    )
    file_id: str
    expires_at: datetime


MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part (all but the last)
DEFAULT_PART_BYTES = 8 * 1024 * 1024
MAX_PART_BYTES = 5 * 1024 * 1024 * 1024  # S3's largest part
MAX_PARTS = 10_000  # S3's most parts per upload


class UploadCreate(BaseModel):
    filename: Name = Field(max_length=255, examples=["large-video.mp4"])
    content_type: str = Field(max_length=128, examples=["video/mp4"])
    size_bytes: int = Field(gt=0, examples=[300_000_000])
    part_size: int = Field(
        default=DEFAULT_PART_BYTES,
        ge=MIN_PART_BYTES,
        le=MAX_PART_BYTES,
        description="Bytes per part (every part but the last); at most 10,000 parts.",
    )
    agent_id: Literal["maya", "jordan", "sam", "taylor"] | None = Field(
        default=None, description="Also apply this agent's types and size limit."
    )


class UploadPart(BaseModel):
    part_number: int
    size_bytes: int = Field(description="The part must be exactly this long.")
    upload_url: str = Field(description="PUT the part's raw bytes here, without a bearer token, before `expires_at`.")


class ReceivedPart(BaseModel):
    part_number: int
    size_bytes: int


class UploadRead(BaseModel):
    id: str = Field(examples=["upl_3f9c2a7b1e4d5c6a7b8c9d0e"])
    file_id: str
    filename: str
    content_type: str
    size_bytes: int
    part_size: int
    status: Literal["uploading", "completed"]
    expires_at: datetime
    parts: list[UploadPart] = Field(
        description="Every part and a URL for it (fresh ones on each GET); empty once completed."
    )
    received: list[ReceivedPart] = Field(description="The parts the storage holds in full: send the others.")
    created_at: datetime
