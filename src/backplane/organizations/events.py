"""`member.invited`, `member.joined`, `member.removed`: who was invited (never the invitation's token),
who joined through an invitation, who left or was removed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.auth.models import User
from backplane.core.db import utcnow
from backplane.events.service import record_event
from backplane.organizations.models import Invitation, Membership


def announce_invited(session: AsyncSession, invitation: Invitation) -> None:
    data = {
        "invitation_id": invitation.id,
        "organization_id": str(invitation.organization_id),
        "email": invitation.email,
        "role": str(invitation.role),
        "expires_at": invitation.expires_at.isoformat(),
    }
    record_event(session, invitation.organization_id, "member.invited", data)


def _member(membership: Membership, user: User) -> dict[str, str]:
    return {
        "organization_id": str(membership.organization_id),
        "user_id": str(user.id),
        "email": user.email,
        "role": str(membership.role),
    }


def announce_joined(session: AsyncSession, membership: Membership, user: User, invitation: Invitation) -> None:
    data = {**_member(membership, user), "invitation_id": invitation.id, "joined_at": utcnow().isoformat()}
    record_event(session, membership.organization_id, "member.joined", data)


def announce_removed(session: AsyncSession, membership: Membership, user: User, *, left: bool) -> None:
    data = {**_member(membership, user), "left": left, "removed_at": utcnow().isoformat()}
    record_event(session, membership.organization_id, "member.removed", data)
