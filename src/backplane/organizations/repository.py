from __future__ import annotations

import functools
import uuid

from sqlalchemy import Select, and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import User
from backplane.core.ids import is_id
from backplane.core.tenancy import TenantRepository
from backplane.organizations.models import Invitation, Membership, Organization, Role


@functools.cache
def _user_and_membership(in_organization: bool) -> Select[User, Membership, Organization]:
    """`get_user_and_membership`'s statement, built once with its values as bound parameters: every
    request signed in with a JWT runs it, and building an ORM select cost more than running it (about
    0.4 ms of CPU here, and 0.1 to 0.2 ms more for its cache key, against 0.6 us for a built one's)."""
    membership_on = Membership.user_id == User.id
    if in_organization:
        membership_on = and_(membership_on, Membership.organization_id == bindparam("organization_id"))
    return (
        select(User, Membership, Organization)
        .outerjoin(Membership, membership_on)
        .outerjoin(Organization, Organization.id == Membership.organization_id)
        .where(User.id == bindparam("user_id"))
        .order_by(Membership.created_at, Membership.id)
        .limit(1)
    )


class OrganizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, organization_id: uuid.UUID) -> Organization | None:
        return await self.session.get(Organization, organization_id)

    async def slug_taken(self, slug: str) -> bool:
        stmt = select(func.count()).select_from(Organization).where(Organization.slug == slug)
        return bool((await self.session.execute(stmt)).scalar_one())

    def add(self, organization: Organization) -> Organization:
        self.session.add(organization)
        return organization

    async def delete(self, organization: Organization) -> None:
        await self.session.delete(organization)


class MembershipRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, membership: Membership) -> Membership:
        self.session.add(membership)
        return membership

    async def get(
        self,
        organization_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        for_update: bool = False,
    ) -> Membership | None:
        stmt = select(Membership).where(Membership.organization_id == organization_id, Membership.user_id == user_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_with_organization(
        self, user_id: uuid.UUID, organization_id: uuid.UUID | None
    ) -> tuple[Membership, Organization] | None:
        """The user's membership in `organization_id`, or in their oldest organization if None."""
        stmt = (
            select(Membership, Organization)
            .join(Organization, Organization.id == Membership.organization_id)
            .where(Membership.user_id == user_id)
        )
        if organization_id is not None:
            stmt = stmt.where(Membership.organization_id == organization_id)
        stmt = stmt.order_by(Membership.created_at, Membership.id).limit(1)
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row else None

    async def get_user_and_membership(
        self, user_id: uuid.UUID, organization_id: uuid.UUID | None
    ) -> tuple[User, Membership | None, Organization | None] | None:
        """One query per JWT request: the user, and their membership in `organization_id` (or in
        their oldest organization if None); membership and organization are None when there is none."""
        values: dict[str, uuid.UUID] = {"user_id": user_id}
        if organization_id is not None:
            values["organization_id"] = organization_id
        row = (await self.session.execute(_user_and_membership(organization_id is not None), values)).first()
        return (row[0], row[1], row[2]) if row else None

    def organizations_of(self, user_id: uuid.UUID) -> Select[Organization, Membership]:
        return (
            select(Organization, Membership)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user_id)
        )

    def members_of(self, organization_id: uuid.UUID) -> Select[Membership, User]:
        return (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id)
        )

    async def lock_owners(self, organization_id: uuid.UUID) -> list[Membership]:
        """Lock the owner rows so that two concurrent demotions cannot both leave zero owners."""
        stmt = (
            select(Membership)
            .where(
                Membership.organization_id == organization_id,
                Membership.role == Role.owner,
            )
            .order_by(Membership.id)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def organizations_only_owned_by(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Organizations where `user_id` is the only owner and other members remain."""
        owner_count = func.count().filter(Membership.role == Role.owner)
        owned = select(Membership.organization_id).where(Membership.user_id == user_id, Membership.role == Role.owner)
        stmt = (
            select(Membership.organization_id)
            .where(Membership.organization_id.in_(owned))
            .group_by(Membership.organization_id)
            .having(owner_count == 1, func.count() > 1)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def delete(self, membership: Membership) -> None:
        await self.session.delete(membership)

    async def has_member_with_email(self, organization_id: uuid.UUID, email: str) -> bool:
        stmt = (
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id, User.email == email)
        )
        return bool((await self.session.execute(stmt)).scalar_one())

    async def count_for_user(self, user_id: uuid.UUID, *, lock: bool = False) -> int:
        """How many organizations the user belongs to. `lock`: first lock the user's row, so that two
        concurrent joins cannot both pass a cap check."""
        if lock:
            await self.session.execute(select(User.id).where(User.id == user_id).with_for_update())
        stmt = select(func.count()).select_from(Membership).where(Membership.user_id == user_id)
        return int((await self.session.execute(stmt)).scalar_one())


class InvitationRepository(TenantRepository[Invitation]):
    model = Invitation

    async def get_by_public_id(self, invitation_id: str, *, for_update: bool = False) -> Invitation | None:
        if not is_id(invitation_id, "inv"):
            return None
        stmt = self.select().where(Invitation.id == invitation_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()


async def find_invitation_by_token(
    session: AsyncSession, token_hash: str, *, for_update: bool = False
) -> Invitation | None:
    """Accepting starts from the mailed token alone, before the organization is known."""
    stmt = select(Invitation).where(Invitation.token_hash == token_hash)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
