"""The operator's shell: `backplane staff grant|revoke EMAIL` and `backplane licenses issue`.

Each runs in one unit of work against the configured database and prints what it did; every
change is recorded as a staff action by `cli:<the OS user>`.
"""

from __future__ import annotations

import getpass
import uuid
from datetime import datetime
from typing import Any

from backplane.auth.repository import UserRepository
from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work
from backplane.licenses import service as licenses
from backplane.licenses.schemas import LicenseCreate
from backplane.organizations.repository import OrganizationRepository
from backplane.staff import service as staff


class CommandFailed(Exception):
    """A clear message for the operator; the command exits 1."""


def cli_actor() -> tuple[uuid.UUID | None, str]:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a bare container)
        name = None
    return staff.actor_of(None, name)


async def set_staff(settings: Settings, email: str, granted: bool) -> str:
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            user = await UserRepository(session).get_by_email(email)
            if user is None:
                raise CommandFailed(f"no user has the email address {email!r}")
            changed = user.is_staff != granted
            user.is_staff = granted
            if changed:
                staff.record(session, cli_actor(), "staff.grant" if granted else "staff.revoke", target_id=str(user.id))
            state = "is now" if granted else "is no longer"
            return f"{user.email} {state} staff" + ("" if changed else " (unchanged)")
    finally:
        await engine.dispose()


async def issue_license(
    settings: Settings,
    organization_id: uuid.UUID,
    tier: str,
    seats: int,
    expires: datetime | None,
    test: bool,
) -> dict[str, Any]:
    data = LicenseCreate.model_validate({"tier": tier, "seats": seats, "expiry_date": expires})
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if await OrganizationRepository(session).get_by_id(organization_id) is None:
                raise CommandFailed(f"no organization has the id {organization_id}")
            license_ = await licenses.create_license(
                session, organization_id, data, prefix=settings.license_key_prefix, livemode=not test
            )
            staff.record(
                session,
                cli_actor(),
                "license.create",
                organization_id=organization_id,
                target_id=str(license_.id),
                details={**data.model_dump(mode="json", exclude={"organization_id"}), "livemode": not test},
            )
            return licenses.license_read(license_, seats_in_use=0).model_dump(mode="json")
    finally:
        await engine.dispose()
