"""The staff console's reads: find an organization or a user, and see an organization whole (plan,
subscription, this month's usage, licenses with their live seats, members). Staff only; reads are not
recorded as staff actions (changes are, where they are made)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import User
from backplane.billing import consumption
from backplane.billing import service as billing_service
from backplane.billing.schemas import SubscriptionRead, UsageRead, subscription_read
from backplane.core.db import utcnow
from backplane.core.errors import NotFound
from backplane.licenses.schemas import LicenseRead
from backplane.licenses.service import license_read
from backplane.organizations.models import Organization
from backplane.organizations.repository import OrganizationRepository
from backplane.organizations.schemas import MemberRead
from backplane.staff import repository

MEMBERS_SHOWN = 100


class StaffOrganizationRead(BaseModel):
    id: uuid.UUID
    name: str = Field(examples=["Acme Inc"])
    slug: str = Field(examples=["acme-inc"])
    created_at: datetime


class StaffMembershipRead(BaseModel):
    organization_id: uuid.UUID
    name: str
    slug: str
    role: str = Field(examples=["owner"])


class StaffUserRead(BaseModel):
    id: uuid.UUID
    email: str = Field(examples=["dev@example.com"])
    full_name: str
    is_active: bool = Field(description="false once the user deactivated their account.")
    is_staff: bool
    email_verified: bool
    created_at: datetime
    organizations: list[StaffMembershipRead] = Field(description="Every membership, oldest first.")


class StaffOrganizationDetail(StaffOrganizationRead):
    subscription: SubscriptionRead = Field(
        description="Plan, status, seats and period, as `GET /v1/subscriptions/current` shows it to the customer."
    )
    usage: UsageRead = Field(description="This month's live-mode usage, as `GET /v1/usage` computes it.")
    licenses: list[LicenseRead] = Field(
        description="Every license, live and test, oldest first, each with `seats_in_use` (live seats now)."
    )
    live_seats: int = Field(description="Live seats now, over all the licenses.")
    members: list[MemberRead] = Field(description=f"The first {MEMBERS_SHOWN} members, oldest first.")
    member_count: int


def organization_read(organization: Organization) -> StaffOrganizationRead:
    return StaffOrganizationRead(
        id=organization.id, name=organization.name, slug=organization.slug, created_at=organization.created_at
    )


async def organization_detail(
    request: Request, session: AsyncSession, organization_id: uuid.UUID
) -> StaffOrganizationDetail:
    organization = await OrganizationRepository(session).get_by_id(organization_id)
    if organization is None:
        raise NotFound("Organization not found.")
    settings = request.app.state.settings
    leases = request.app.state.leases
    now = utcnow()
    plan = await billing_service.plan_of(session, request.app.state.redis, settings, organization_id)
    usage = await consumption.summary(
        session, leases, plan, organization_id, True, consumption.parse_period(None, now), now
    )
    licenses = [
        license_read(license_, seats_in_use=await leases.live_count(license_.id))
        for license_ in await repository.licenses_of(session, organization_id)
    ]
    members = [
        MemberRead(
            organization_id=membership.organization_id,
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=membership.role,
            joined_at=membership.created_at,
        )
        for membership, user in await repository.members_of(session, organization_id, MEMBERS_SHOWN)
    ]
    return StaffOrganizationDetail(
        **organization_read(organization).model_dump(),
        subscription=subscription_read(await billing_service.current(session, organization_id), settings),
        usage=UsageRead.model_validate(usage),
        licenses=licenses,
        live_seats=sum(shown.seats_in_use or 0 for shown in licenses),
        members=members,
        member_count=await repository.member_count(session, organization_id),
    )


async def users_read(session: AsyncSession, users: list[User]) -> list[StaffUserRead]:
    memberships: dict[uuid.UUID, list[StaffMembershipRead]] = {user.id: [] for user in users}
    for user_id, organization, role in await repository.memberships_of_users(session, list(memberships)):
        memberships[user_id].append(
            StaffMembershipRead(
                organization_id=organization.id, name=organization.name, slug=organization.slug, role=role
            )
        )
    return [
        StaffUserRead(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            is_active=user.is_active,
            is_staff=user.is_staff,
            email_verified=user.email_verified,
            created_at=user.created_at,
            organizations=memberships[user.id],
        )
        for user in users
    ]
