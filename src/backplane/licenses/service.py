"""Licenses: issue, read, change, and the public validation check.

Where live licenses come from: what was bought (a completed checkout; seat changes and
cancellation follow it, `billing.service`), the free plan (one `free` license when an
organization is founded), and platform staff (`POST /api/v1/licenses/` with a staff JWT, or
`backplane licenses issue`). Customer admins read, download, suspend and reactivate their own
licenses; they never create live licenses or change their tier, seats or expiry. Test-mode keys
may create and change test-mode licenses, within TEST_MAX_SEATS and TEST_MAX_DAYS, for
integration tests.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Forbidden, InvalidInput, NotFound
from backplane.licenses import events, keys
from backplane.licenses.models import License, Tier
from backplane.licenses.repository import LicenseRepository, find_license_by_key, find_license_for_staff
from backplane.licenses.schemas import (
    LicenseCreate,
    LicenseRead,
    LicenseStatus,
    LicenseUpdate,
    PublicLicense,
    ValidateResponse,
)
from backplane.organizations.repository import OrganizationRepository
from backplane.staff import service as staff

TEST_MAX_SEATS = 5
TEST_MAX_DAYS = 30
_SUBSCRIPTION_FIELDS = ("tier", "seats", "expiry_date", "is_active")


class LicensesComeFromTheSubscription(AppError):
    status_code, code, title = 403, "LICENSE_MANAGED_BY_SUBSCRIPTION", "Forbidden"
    default_message = (
        "Live licenses come from your subscription: buy one with POST /api/v1/subscriptions/checkout/ and change "
        "its seats with POST /api/v1/subscriptions/update/; a test-mode key may create test licenses."
    )


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


def license_read(license_: License, seats_in_use: int | None = None) -> LicenseRead:
    return LicenseRead(
        id=license_.id,
        key_string=license_.key_string,
        tier=license_.tier,
        seats=license_.seats,
        is_active=license_.is_active and license_.suspended_at is None,
        status=status_of(license_),
        expiry_date=license_.expiry_date,
        metadata=license_.metadata_,
        organization=license_.organization_id,
        livemode=license_.livemode,
        created_at=license_.created_at,
        updated_at=license_.updated_at,
        seats_in_use=seats_in_use,
    )


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
    repository = LicenseRepository(session, organization_id, livemode)
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
        events.announce_created(session, license_)
        return license_
    raise RuntimeError("could not generate a unique license key")


async def issue_free_license(session: AsyncSession, organization_id: uuid.UUID, settings: Settings) -> License | None:
    """The free plan's license of a new organization: FREE_LICENSE_SEATS seats (0: none), never expiring."""
    if settings.free_license_seats == 0:
        return None
    return await create_license(
        session,
        organization_id,
        LicenseCreate(tier=Tier.free, seats=settings.free_license_seats),
        prefix=settings.license_key_prefix,
        livemode=True,
    )


async def create_for(session: AsyncSession, principal: Principal, data: LicenseCreate, settings: Settings) -> License:
    """`POST /api/v1/licenses/`: staff issue live licenses to any organization; a test-mode caller (a test key,
    or a user with `X-Backplane-Mode: test`) issues itself test licenses; anyone else is told where live
    licenses come from."""
    if _acts_as_staff(principal):
        if data.organization_id is None:
            raise InvalidInput({"organization_id": ["Staff name the organization the license is for."]})
        if await OrganizationRepository(session).get_by_id(data.organization_id) is None:
            raise NotFound("Organization not found.")
        license_ = await create_license(
            session, data.organization_id, data, prefix=settings.license_key_prefix, livemode=True
        )
        staff.record(
            session,
            staff.actor_of(principal.user),
            "license.create",
            organization_id=data.organization_id,
            target_id=str(license_.id),
            details=data.model_dump(mode="json", exclude={"organization_id"}),
        )
        return license_
    if data.organization_id is not None and data.organization_id != principal.organization_id:
        raise Forbidden("Only platform staff may issue licenses to another organization.")
    if principal.livemode:
        raise LicensesComeFromTheSubscription()
    data = data.model_copy(update={"expiry_date": data.expiry_date or utcnow() + timedelta(days=TEST_MAX_DAYS)})
    _check_test_limits(data.seats, data.expiry_date, utcnow())
    return await create_license(
        session, principal.organization_id, data, prefix=settings.license_key_prefix, livemode=False
    )


def _acts_as_staff(principal: Principal) -> bool:
    """Staff powers are a signed-in staff user's in live mode; in test mode (`X-Backplane-Mode: test`) they
    are an ordinary test-mode caller of their own organization."""
    return principal.is_staff and principal.api_key is None and principal.livemode


def _check_test_limits(seats: int | None, expiry: datetime | None, created_at: datetime) -> None:
    errors: dict[str, list[str]] = {}
    if seats is not None and seats > TEST_MAX_SEATS:
        errors["seats"] = [f"A test-mode license has at most {TEST_MAX_SEATS} seats."]
    if expiry is not None and expiry > created_at + timedelta(days=TEST_MAX_DAYS):
        errors["expiry_date"] = [f"A test-mode license lasts at most {TEST_MAX_DAYS} days from its creation."]
    if errors:
        raise InvalidInput(errors)


async def get_license(
    session: AsyncSession, organization_id: uuid.UUID, license_id: uuid.UUID, *, livemode: bool
) -> License:
    license_ = await LicenseRepository(session, organization_id, livemode).get(license_id)
    if license_ is None:
        raise NotFound("License not found.")
    return license_


async def update_for(
    session: AsyncSession, principal: Principal, license_id: uuid.UUID, data: LicenseUpdate
) -> License:
    """`PATCH /api/v1/licenses/{id}/`: staff change any license; customer admins suspend, reactivate and
    annotate their own, and change test licenses within the test limits."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if _acts_as_staff(principal):
        license_ = await find_license_for_staff(session, license_id, for_update=True)
        if license_ is None:
            raise NotFound("License not found.")
        before = {"tier": license_.tier, "seats": license_.seats, "status": status_of(license_)}
        announced = events.snapshot(license_)
        _apply(license_, changes)
        await session.flush()
        events.announce_change(session, license_, announced)
        staff.record(
            session,
            staff.actor_of(principal.user),
            "license.update",
            organization_id=license_.organization_id,
            target_id=str(license_.id),
            details={"changes": data.model_dump(mode="json", exclude_unset=True), "before": before},
        )
        return license_
    license_ = await LicenseRepository(session, principal.organization_id, principal.livemode).get(
        license_id, for_update=True
    )
    if license_ is None:
        raise NotFound("License not found.")
    if license_.livemode:
        if any(changes.get(name) is not None for name in _SUBSCRIPTION_FIELDS) or "expiry_date" in changes:
            raise LicensesComeFromTheSubscription(
                "A live license's tier, seats, expiry and activation follow your subscription: change seats with "
                "POST /api/v1/subscriptions/update/. You may suspend or reactivate it and change its metadata."
            )
    else:
        if changes.get("tier") is not None:
            raise InvalidInput({"tier": ["A test-mode license keeps the tier it was created with."]})
        _check_test_limits(changes.get("seats"), changes.get("expiry_date"), license_.created_at)
    before = events.snapshot(license_)
    _apply(license_, changes)
    await session.flush()
    events.announce_change(session, license_, before)
    return license_


def _apply(license_: License, changes: dict[str, Any]) -> None:
    if changes.get("tier") is not None:
        license_.tier = changes["tier"]
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
            livemode=license_.livemode,
        ),
    )
