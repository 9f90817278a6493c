"""Organizations and memberships: creation, renaming, members and their roles."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access import callers
from backplane.api_keys.models import RevokedReason
from backplane.api_keys.repository import revoke_created_by
from backplane.auth.models import User
from backplane.auth.repository import UserRepository
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.errors import AppError, Conflict, Forbidden, NotFound
from backplane.licenses.service import issue_free_license
from backplane.organizations.events import announce_removed
from backplane.organizations.models import Membership, Organization, Role
from backplane.organizations.repository import (
    MembershipRepository,
    OrganizationRepository,
)

_NON_SLUG = re.compile(r"[^a-z0-9]+")


class TooManyOrganizations(AppError):
    status_code, code, title = 409, "ORGANIZATION_LIMIT_REACHED", "Conflict"


async def check_organization_cap(session: AsyncSession, user_id: uuid.UUID, settings: Settings) -> None:
    """A user may own or belong to at most MAX_ORGANIZATIONS_PER_USER organizations."""
    cap = settings.max_organizations_per_user
    if await MembershipRepository(session).count_for_user(user_id, lock=True) >= cap:
        raise TooManyOrganizations(
            f"A user may belong to at most {cap} organizations; leave one first.",
            details={"max_organizations": cap},
        )


async def found_organization(session: AsyncSession, settings: Settings, name: str, owner: User) -> Organization:
    """A new organization owned by `owner`, on the free plan with its free license (FREE_LICENSE_SEATS)."""
    await check_organization_cap(session, owner.id, settings)
    organization = await create_organization(session, name, owner)
    await issue_free_license(session, organization.id, settings)
    return organization


def slugify(name: str) -> str:
    return _NON_SLUG.sub("-", name.lower()).strip("-")[:60].strip("-") or "org"


async def create_organization(session: AsyncSession, name: str, owner: User) -> Organization:
    orgs = OrganizationRepository(session)
    base = slugify(name)
    slug = base
    for _ in range(5):
        if not await orgs.slug_taken(slug):
            try:
                async with session.begin_nested():
                    organization = orgs.add(Organization(id=uuid.uuid4(), name=name, slug=slug))
                    await session.flush()
            except IntegrityError:  # another request took the slug between the check and the insert
                pass
            else:
                MembershipRepository(session).add(
                    Membership(
                        organization_id=organization.id,
                        user_id=owner.id,
                        role=Role.owner,
                    )
                )
                await session.flush()
                return organization
        slug = f"{base[:53]}-{secrets.token_hex(3)}"
    raise Conflict("Could not allocate a unique slug for this organization; try another name.")


async def rename_organization(session: AsyncSession, organization: Organization, name: str) -> Organization:
    organization.name = name
    await session.flush()
    return organization


async def add_member(session: AsyncSession, organization_id: uuid.UUID, user: User, role: Role) -> Membership:
    memberships = MembershipRepository(session)
    if await memberships.get(organization_id, user.id) is not None:
        raise Conflict("You are already a member of this organization.")
    try:
        async with session.begin_nested():
            membership = memberships.add(Membership(organization_id=organization_id, user_id=user.id, role=role))
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("You are already a member of this organization.") from exc
    return membership


async def change_role(
    session: AsyncSession,
    organization: Organization,
    acting_role: Role,
    user_id: uuid.UUID,
    role: Role,
) -> tuple[Membership, User]:
    memberships = MembershipRepository(session)
    owners = await memberships.lock_owners(organization.id)
    membership = await memberships.get(organization.id, user_id, for_update=True)
    if membership is None:
        raise NotFound("No member with this id in the organization.")
    current = Role(membership.role)
    check_can_grant(acting_role, current)
    check_can_grant(acting_role, role)
    if current is Role.owner and role is not Role.owner and len(owners) <= 1:
        raise Conflict("An organization must keep at least one owner; make someone else owner first.")
    membership.role = role
    await session.flush()
    user = await UserRepository(session).get_by_id(user_id)
    assert user is not None
    return membership, user


async def remove_member(
    session: AsyncSession,
    organization: Organization,
    acting_role: Role,
    acting_user_id: uuid.UUID | None,
    user_id: uuid.UUID,
) -> None:
    memberships = MembershipRepository(session)
    owners = await memberships.lock_owners(organization.id)
    membership = await memberships.get(organization.id, user_id, for_update=True)
    if membership is None:
        raise NotFound("No member with this id in the organization.")
    if user_id != acting_user_id:  # anyone may leave; removing others needs the right role
        if not acting_role.at_least(Role.admin):
            raise Forbidden(
                f"Your role '{acting_role}' does not allow removing members; it requires 'admin'.",
                details={"required_role": str(Role.admin), "role": str(acting_role)},
            )
        check_can_grant(acting_role, Role(membership.role))
    if membership.role == Role.owner and len(owners) <= 1:
        raise Conflict("An organization must keep at least one owner; make someone else owner first.")
    removed = await UserRepository(session).get_by_id(user_id)
    assert removed is not None
    announce_removed(session, membership, removed, left=user_id == acting_user_id)
    await memberships.delete(membership)
    # Whoever leaves takes the API keys they created here with them.
    await revoke_created_by(session, user_id, RevokedReason.creator_left, utcnow(), organization_id=organization.id)
    await session.flush()


async def delete_organization(session: AsyncSession, organization: Organization) -> None:
    """Everything of the organization goes with it (the database cascades, unseen by the ORM: its
    members' cached memberships are invalidated here)."""
    await callers.invalidate_members_after_commit(session, organization.id)
    await OrganizationRepository(session).delete(organization)
    await session.flush()


def check_can_grant(acting_role: Role, role: Role) -> None:
    if role is Role.owner and acting_role is not Role.owner:
        raise Forbidden("Only an owner can grant, change or remove the owner role.")
