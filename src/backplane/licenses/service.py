"""Licenses: issue, read, change, and the public validation check."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.db import utcnow
from backplane.core.errors import AppError, InvalidInput, NotFound
from backplane.licenses import keys
from backplane.licenses.models import License
from backplane.licenses.repository import LicenseRepository, find_license_by_key
from backplane.licenses.schemas import LicenseCreate, LicenseStatus, LicenseUpdate, PublicLicense, ValidateResponse


class LicenseNotUsable(AppError):
    status_code, code, title = 403, "LICENSE_NOT_USABLE", "Forbidden"


def status_of(license_: License) -> LicenseStatus:
    if license_.suspended_at is not None:
        return "suspended"
    if not license_.is_active:
        return "inactive"
    if license_.expired(utcnow()):
        return "expired"
    return "active"


def usable_or_raise(license_: License) -> None:
    status = status_of(license_)
    if status == "suspended":
        raise LicenseNotUsable("This license is suspended. Contact your administrator.")
    if status == "inactive":
        raise LicenseNotUsable("This license is inactive.")
    if status == "expired":
        assert license_.expiry_date is not None
        raise LicenseNotUsable(f"This license expired on {license_.expiry_date.isoformat()}.")


async def create_license(
    session: AsyncSession, organization_id: uuid.UUID, data: LicenseCreate, *, prefix: str, livemode: bool
) -> License:
    if data.expiry_date is not None and data.expiry_date <= utcnow():
        raise InvalidInput({"expiry_date": ["Must be in the future."]})
    repository = LicenseRepository(session, organization_id)
    for _ in range(3):
        license_ = License(
            id=uuid.uuid4(),
            organization_id=organization_id,
            key_string=keys.generate(prefix, utcnow().year),
            tier=data.tier,
            seats=data.seats,
            expiry_date=data.expiry_date,
            metadata_=data.metadata,
            livemode=livemode,
        )
        try:
            async with session.begin_nested():
                repository.add(license_)
                await session.flush()
        except IntegrityError:  # 75 random bits collided; draw again
            continue
        return license_
    raise RuntimeError("could not generate a unique license key")


async def get_license(session: AsyncSession, organization_id: uuid.UUID, license_id: uuid.UUID) -> License:
    license_ = await LicenseRepository(session, organization_id).get(license_id)
    if license_ is None:
        raise NotFound("License not found.")
    return license_


async def update_license(
    session: AsyncSession, organization_id: uuid.UUID, license_id: uuid.UUID, data: LicenseUpdate
) -> License:
    license_ = await LicenseRepository(session, organization_id).get(license_id, for_update=True)
    if license_ is None:
        raise NotFound("License not found.")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if changes.get("seats") is not None:
        license_.seats = changes["seats"]
    if "suspended" in changes and changes["suspended"] is not None:
        license_.suspended_at = (license_.suspended_at or utcnow()) if changes["suspended"] else None
    if changes.get("is_active") is not None:
        license_.is_active = changes["is_active"]
    if "expiry_date" in changes:
        license_.expiry_date = changes["expiry_date"]
    if changes.get("metadata") is not None:
        license_.metadata_ = changes["metadata"]
    await session.flush()
    return license_


async def validate_key(session: AsyncSession, key_string: str) -> ValidateResponse:
    canonical = keys.normalize(key_string)
    if canonical is None:
        return ValidateResponse(
            valid=False,
            code="MALFORMED",
            reason="This is not a valid license key; check it for typing mistakes.",
        )
    license_ = await find_license_by_key(session, canonical)
    if license_ is None:
        return ValidateResponse(valid=False, code="NOT_FOUND", reason="No license has this key.")
    status = status_of(license_)
    if status != "active":
        reasons = {
            "suspended": "This license is suspended.",
            "inactive": "This license is inactive.",
            "expired": f"This license expired on {license_.expiry_date.isoformat() if license_.expiry_date else ''}.",
        }
        code = {"suspended": "SUSPENDED", "inactive": "INACTIVE", "expired": "EXPIRED"}[status]
        return ValidateResponse(valid=False, code=code, reason=reasons[status])
    return ValidateResponse(
        valid=True,
        code="VALID",
        license=PublicLicense(
            key_string=license_.key_string,
            tier=license_.tier,
            seats=license_.seats,
            is_active=True,
            expiry_date=license_.expiry_date,
        ),
    )
