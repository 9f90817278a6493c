"""Members join by invitation: an admin invites an address, and a signed-in user whose *verified*
email is that address accepts with the mailed single-use token.

The answer to an invitation never says whether the address has an account, and nobody is pulled
into an organization without consent: an account pre-registered with someone else's unverified
address cannot accept.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.mail import greeting_name
from backplane.auth.models import User
from backplane.auth.throttle import may_mail
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.effects import effects
from backplane.core.email import SEND_EMAIL
from backplane.core.errors import Conflict, Forbidden, NotFound
from backplane.core.ids import new_id
from backplane.core.ratelimit import RateLimiter
from backplane.core.security import random_token, sha256_hex
from backplane.organizations.events import announce_invited, announce_joined
from backplane.organizations.models import Invitation, InvitationStatus, Membership, Organization, Role
from backplane.organizations.repository import InvitationRepository, MembershipRepository, find_invitation_by_token
from backplane.organizations.service import add_member, check_can_grant, check_organization_cap

ID_PREFIX = "inv"
INVITATION_GONE = "This invitation is unknown, was already used, was revoked or has expired."


async def invite(
    session: AsyncSession,
    limiter: RateLimiter,
    settings: Settings,
    organization: Organization,
    acting_role: Role,
    invited_by: User | None,
    email: str,
    role: Role,
) -> Invitation:
    check_can_grant(acting_role, role)
    email = email.lower()
    if await MembershipRepository(session).has_member_with_email(organization.id, email):
        raise Conflict("Someone with this email address is already a member of the organization.")
    token = random_token()
    invitation = InvitationRepository(session, organization.id).add(
        Invitation(
            id=new_id(ID_PREFIX),
            organization_id=organization.id,
            email=email,
            role=role,
            status=InvitationStatus.pending,
            token_hash=sha256_hex(token),
            invited_by_id=invited_by.id if invited_by else None,
            expires_at=utcnow() + timedelta(hours=settings.invitation_ttl_hours),
        )
    )
    await session.flush()
    announce_invited(session, invitation)
    if not await may_mail(limiter, settings, email):  # the answer stays the same; no mail to a flooded address
        return invitation
    base = settings.public_base_url.rstrip("/")
    # The organization's name is the inviter's text: only a plain name goes into the mail.
    name = greeting_name(organization.name)
    body = (
        f"You have been invited to join {name or 'an organization'} on Backplane as {role}.\n\n"
        f"Sign in (or sign up) with this email address, verify it, then accept the invitation:\n\n"
        f"POST {base}/v1/invitations/{token}/accept\n\n"
        f"The invitation is valid for {settings.invitation_ttl_hours} hours and works once. "
        "If you did not expect it, ignore this email."
    )
    effects(session).enqueue(SEND_EMAIL, email, "You are invited to an organization", body)
    return invitation


async def revoke(session: AsyncSession, organization_id: uuid.UUID, invitation_id: str) -> Invitation:
    invitation = await InvitationRepository(session, organization_id).get_by_public_id(invitation_id, for_update=True)
    if invitation is None:
        raise NotFound("No invitation with this id.")
    if invitation.status == InvitationStatus.pending:
        invitation.status = InvitationStatus.revoked
        invitation.revoked_at = utcnow()
        await session.flush()
    return invitation


async def accept(session: AsyncSession, settings: Settings, user: User, token: str) -> tuple[Membership, Invitation]:
    invitation = await find_invitation_by_token(session, sha256_hex(token), for_update=True)
    if invitation is None or invitation.status_at(utcnow()) is not InvitationStatus.pending:
        raise NotFound(INVITATION_GONE)
    if user.email.lower() != invitation.email:
        raise Forbidden(
            "This invitation is for another email address: sign in with the address it was sent to.",
        )
    if user.email_verified_at is None:
        raise Forbidden(
            "Verify your email address first (the link in the verification email), then accept the invitation.",
            details={"email_verified": False},
        )
    await check_organization_cap(session, user.id, settings)
    membership = await add_member(session, invitation.organization_id, user, Role(invitation.role))
    invitation.status = InvitationStatus.accepted
    invitation.accepted_at = utcnow()
    invitation.accepted_by_id = user.id
    await session.flush()
    announce_joined(session, membership, user, invitation)
    return membership, invitation
