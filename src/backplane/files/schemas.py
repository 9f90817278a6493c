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
