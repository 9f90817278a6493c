"""`/v1/organizations` and their members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from backplane.access.principal import Scope
from backplane.access.requirements import (
    Authenticated,
    Idempotent,
    OrgAdmin,
    OrgMember,
    OrgOwner,
    OrgReader,
    SignedInUser,
)
from backplane.auth.models import User
from backplane.auth.throttle import LimiterDep
from backplane.billing.deps import PlatformLimit
from backplane.billing.service import has_paid_subscription
from backplane.core.db import SessionDep, utcnow
from backplane.core.deps import SettingsDep
from backplane.core.errors import Conflict
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, decode_cursor, page_params, paginate
from backplane.organizations import invitations, service
from backplane.organizations.models import Invitation, Membership, Organization, Role
from backplane.organizations.repository import InvitationRepository, MembershipRepository
from backplane.organizations.schemas import (
    InvitationCreate,
    InvitationRead,
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
    dependencies=[PlatformLimit, Idempotent],
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


def _invitation(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        organization_id=invitation.organization_id,
        email=invitation.email,
        role=invitation.role,
        status=invitation.status_at(utcnow()),
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        organization_id=membership.organization_id,
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
    description="You become its owner; it starts on the free plan with its free license. 409 "
    "`ORGANIZATION_LIMIT_REACHED` past MAX_ORGANIZATIONS_PER_USER organizations.",
    responses=platform_errors(409),
)
async def create_organization(
    body: OrganizationCreate, principal: SignedInUser, session: SessionDep, settings: SettingsDep
) -> OrganizationRead:
    organization = await service.found_organization(session, settings, body.name, principal.require_user())
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
    response_model=InvitationRead,
    summary="Invite someone by email",
    description="Answers 201 with a pending invitation, the same whether or not the address has an account, and "
    "emails the address a single-use link valid INVITATION_TTL_HOURS (default 72). The invitee accepts with "
    "`POST /v1/invitations/{token}/accept` while signed in with that address, verified. Admins invite; only an "
    "owner invites an owner. 409 when someone with that address is already a member. At most 3 account "
    "mails an hour reach one address: past that the invitation is made but not mailed.",
    responses=platform_errors(409),
)
async def invite_member(
    body: InvitationCreate,
    principal: OrgAdmin,
    session: SessionDep,
    limiter: LimiterDep,
    settings: SettingsDep,
) -> InvitationRead:
    assert principal.role is not None
    invitation = await invitations.invite(
        session,
        limiter,
        settings,
        principal.require_organization(),
        principal.role,
        principal.user,
        body.email,
        Role(body.role),
    )
    return _invitation(invitation)


@router.get(
    "/{organization_id}/invitations",
    response_model=Page[InvitationRead],
    summary="List invitations",
    description="Newest last; `status` is pending, accepted, revoked or expired.",
)
async def list_invitations(principal: OrgAdmin, session: SessionDep, page: Pagination) -> Page[InvitationRead]:
    stmt = InvitationRepository(session, principal.organization_id).select()
    rows, cursor = await paginate(session, stmt, page, Invitation.created_at, Invitation.id)
    return Page(data=[_invitation(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.delete(
    "/{organization_id}/invitations/{invitation_id}",
    response_model=InvitationRead,
    summary="Revoke an invitation",
    description="Its link stops working at once. Revoking one that was accepted or already revoked changes nothing.",
)
async def revoke_invitation(invitation_id: str, principal: OrgAdmin, session: SessionDep) -> InvitationRead:
    return _invitation(await invitations.revoke(session, principal.organization_id, invitation_id))


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


@router.delete(
    "/{organization_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an organization (owner)",
    description="Deletes the organization and everything it owns: members, API keys, licenses, files, jobs, "
    "webhooks and events. Refused with 409 while a paid subscription is live: cancel it first.",
    responses=platform_errors(409),
)
async def delete_organization(principal: OrgOwner, session: SessionDep) -> None:
    organization = principal.require_organization()
    if await has_paid_subscription(session, organization.id):
        raise Conflict("This organization has a live paid subscription; cancel it first.")
    await service.delete_organization(session, organization)


invitations_router = APIRouter(
    prefix="/v1/invitations",
    tags=["Organizations"],
    responses=platform_errors(401, 403, 404, 409, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)


@invitations_router.post(
    "/{token}/accept",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    summary="Accept an invitation",
    description="Signed in (a JWT) as the user whose verified email the invitation was sent to. 403 for another "
    "address or an unverified one; 404 for an unknown, used, revoked or expired invitation; 409 past "
    "MAX_ORGANIZATIONS_PER_USER organizations or when already a member. The answer is the new membership.",
)
async def accept_invitation(
    token: Annotated[str, Path(min_length=1, max_length=128)],
    principal: SignedInUser,
    session: SessionDep,
    settings: SettingsDep,
) -> MemberRead:
    user = principal.require_user()
    membership, _ = await invitations.accept(session, settings, user, token)
    return _member(membership, user)
