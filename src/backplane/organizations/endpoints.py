"""`/v1/organizations` and their members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from backplane.auth.deps import Authenticated
from backplane.auth.models import User
from backplane.auth.principal import Scope
from backplane.core.db import SessionDep
from backplane.core.limits import PlatformLimit
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, decode_cursor, page_params, paginate
from backplane.idempotency.service import idempotency
from backplane.organizations import service
from backplane.organizations.deps import OrgAdmin, OrgMember, OrgReader
from backplane.organizations.models import Membership, Organization, Role
from backplane.organizations.repository import MembershipRepository
from backplane.organizations.schemas import (
    MemberCreate,
    MemberRead,
    MemberUpdate,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
)

router = APIRouter(
    prefix="/v1/organizations",
    tags=["Organizations"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Depends(idempotency)],
)
Pagination = Annotated[PageParams, Depends(page_params)]


def _org(organization: Organization, role: Role | str | None) -> OrganizationRead:
    return OrganizationRead(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        role=str(role) if role else None,
        created_at=organization.created_at,
    )


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        joined_at=membership.created_at,
    )


@router.get("", response_model=Page[OrganizationRead], summary="List your organizations")
async def list_organizations(principal: Authenticated, session: SessionDep, page: Pagination) -> Page[OrganizationRead]:
    if principal.api_key is not None:  # a key belongs to exactly one organization
        if page.cursor:
            decode_cursor(page.cursor)  # a tampered cursor is refused the same way for every caller
        organization = principal.require_organization()
        return Page(data=[_org(organization, principal.role)], has_more=False, next_cursor=None)
    user = principal.require_user()
    stmt = MembershipRepository(session).organizations_of(user.id)
    rows, cursor = await paginate(session, stmt, page, Organization.created_at, Organization.id)
    return Page(
        data=[_org(org, m.role) for org, m in rows],
        has_more=cursor is not None,
        next_cursor=cursor,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    summary="Create an organization",
)
async def create_organization(
    body: OrganizationCreate, principal: Authenticated, session: SessionDep
) -> OrganizationRead:
    user = principal.require_user()
    organization = await service.create_organization(session, body.name, user)
    return _org(organization, Role.owner)


@router.get("/{organization_id}", response_model=OrganizationRead, summary="Get an organization")
async def get_organization(principal: OrgReader) -> OrganizationRead:
    return _org(principal.require_organization(), principal.role)


@router.patch(
    "/{organization_id}",
    response_model=OrganizationRead,
    summary="Rename an organization",
)
async def rename_organization(body: OrganizationUpdate, principal: OrgAdmin, session: SessionDep) -> OrganizationRead:
    organization = await service.rename_organization(session, principal.require_organization(), body.name)
    return _org(organization, principal.role)


@router.get(
    "/{organization_id}/members",
    response_model=Page[MemberRead],
    summary="List members",
)
async def list_members(principal: OrgReader, session: SessionDep, page: Pagination) -> Page[MemberRead]:
    stmt = MembershipRepository(session).members_of(principal.organization_id)
    rows, cursor = await paginate(session, stmt, page, Membership.created_at, Membership.id)
    return Page(
        data=[_member(m, u) for m, u in rows],
        has_more=cursor is not None,
        next_cursor=cursor,
    )


@router.post(
    "/{organization_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    summary="Add an existing user by email",
    description="Admins add members; only an owner can add another owner.",
    responses=platform_errors(409),
)
async def add_member(body: MemberCreate, principal: OrgAdmin, session: SessionDep) -> MemberRead:
    assert principal.role is not None
    membership, user = await service.add_member(
        session,
        principal.require_organization(),
        principal.role,
        body.email,
        Role(body.role),
    )
    return _member(membership, user)


@router.patch(
    "/{organization_id}/members/{user_id}",
    response_model=MemberRead,
    summary="Change a member's role",
    description="The organization always keeps at least one owner (409 otherwise).",
    responses=platform_errors(409),
)
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, principal: OrgAdmin, session: SessionDep
) -> MemberRead:
    assert principal.role is not None
    membership, user = await service.change_role(
        session,
        principal.require_organization(),
        principal.role,
        user_id,
        Role(body.role),
    )
    return _member(membership, user)


@router.delete(
    "/{organization_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member (or leave)",
    description="Admins remove members; anyone may remove themselves. The last owner cannot leave.",
    responses=platform_errors(409),
)
async def remove_member(user_id: uuid.UUID, principal: OrgMember, session: SessionDep) -> None:
    assert principal.role is not None
    if principal.api_key is not None:  # keys have scopes, not roles; a key never "leaves"
        principal.require(Scope.admin)
    acting_user = principal.user.id if principal.user and principal.api_key is None else None
    await service.remove_member(session, principal.require_organization(), principal.role, acting_user, user_id)
