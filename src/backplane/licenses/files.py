"""Licensing surface: signed license files and the public key that verifies them.

Included before the main licenses router, so that `public-key/` is not read as a license id.
"""

from __future__ import annotations

import base64
import uuid
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from backplane.access.requirements import Public, Reader
from backplane.core.db import SessionDep, utcnow
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors
from backplane.licenses import service, signing
from backplane.licenses.limits import LicenseOperationsLimit, ValidationLimit

router = APIRouter(prefix="/api/v1/licenses", tags=["Licenses"])


class PublicKeyRead(BaseModel):
    algorithm: Literal["Ed25519"]
    key_id: str = Field(description="Fingerprint of the key; license files name the key that signed them.")
    public_key_pem: str = Field(description="SubjectPublicKeyInfo PEM.")
    public_key: str = Field(description="The raw 32-byte key, base64.")


class LicensePayload(BaseModel):
    id: uuid.UUID
    key: str = Field(examples=["PROD-2026-7KQD-M3XA-9TWC-HN4R"])
    tier: str
    seats: int
    expiry: str | None = Field(description="When the license expires (RFC 3339, UTC); null: never.")
    organization: uuid.UUID
    livemode: bool = Field(description="false: a test-mode license; refuse it in production builds.")
    issued_at: str = Field(examples=["2026-01-01T12:00:00Z"])
    expires_at: str = Field(description="When this file stops being valid; download a fresh one before then.")


class LicenseFile(BaseModel):
    format: Literal["backplane-license-v1"]
    algorithm: Literal["Ed25519"]
    key_id: str
    payload: LicensePayload
    signature: str = Field(
        description="Base64 Ed25519 signature over the payload's canonical JSON: keys sorted, separators "
        "`,` and `:` with no spaces, UTF-8 with non-ASCII characters unescaped."
    )


@router.get(
    "/public-key/",
    response_model=PublicKeyRead,
    dependencies=[Public("licensed software verifies license files offline with it"), ValidationLimit],
    summary="The public key that verifies license files (public, no authentication)",
)
async def get_public_key(settings: SettingsDep, response: Response) -> PublicKeyRead:
    key = signing.public_key(settings)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return PublicKeyRead(
        algorithm="Ed25519",
        key_id=signing.key_id(key),
        public_key_pem=signing.public_key_pem(key),
        public_key=base64.b64encode(signing.raw_public_key(key)).decode(),
    )


@router.get(
    "/{license_id}/download/",
    response_class=JSONResponse,
    dependencies=[LicenseOperationsLimit],
    summary="Download a signed license file",
    description="The license's payload signed with Ed25519, verifiable offline with `licenses/public-key/` "
    "(or `backplane license verify FILE`). The file is valid for LICENSE_FILE_TTL_SECONDS, never past the "
    "license's expiry. 403 for a suspended, inactive or expired license: no file is signed for it.",
    responses={
        200: {"model": LicenseFile, "description": "The license file, as an attachment."},
        **licensing_errors(401, 403, 404, 429),
    },
)
async def download_license(
    license_id: uuid.UUID, principal: Reader, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    license_ = await service.get_license(session, principal.organization_id, license_id, livemode=principal.livemode)
    service.usable_or_raise(license_)
    payload = signing.license_payload(license_, issued_at=utcnow(), ttl_seconds=settings.license_file_ttl_seconds)
    document = signing.sign(payload, signing.private_key(settings))
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": f'attachment; filename="license-{license_.key_string}.json"',
            "Cache-Control": "no-store",
        },
    )
