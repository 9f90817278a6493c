"""The caller, resolved once per request, and what it may do.

An API key acts with its own scopes intersected with its creator's *current* role in the
organization (a demoted creator's keys lose what the new role lacks; a creator who left takes
their keys with them). Owner-only actions need a user whose role is owner, or a key with the
`admin` scope created by a current owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from backplane.api_keys.models import ApiKey
from backplane.auth.models import User
from backplane.core.errors import Forbidden, NotFound
from backplane.organizations.models import Organization, Role


class Scope(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"
    owner = "owner"  # never granted to a key by name: billing, owners, deleting the organization


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.viewer: frozenset({Scope.read}),
    Role.member: frozenset({Scope.read, Scope.write}),
    Role.admin: frozenset({Scope.read, Scope.write, Scope.admin}),
    Role.owner: frozenset({Scope.read, Scope.write, Scope.admin, Scope.owner}),
}
MIN_ROLE = {
    Scope.read: Role.viewer,
    Scope.write: Role.member,
    Scope.admin: Role.admin,
    Scope.owner: Role.owner,
}
MIN_SCOPE = {role: scope for scope, role in MIN_ROLE.items()}
KEY_SCOPES = (Scope.read, Scope.write, Scope.admin)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User | None  # for an API key: its creator
    api_key: ApiKey | None
    organization: Organization | None
    role: Role | None  # for an API key: the role its effective scopes amount to
    scopes: frozenset[Scope]
    livemode: bool = True
    is_staff: bool = False  # the operator's people; a signed-in user only, never an API key
    creator_role: Role | None = None  # for an API key: its creator's current role

    @property
    def is_api_key(self) -> bool:
        return self.api_key is not None

    @property
    def caller_id(self) -> str:
        """Stable name of who is calling: the key, or the user (idempotency keys and limits are per caller)."""
        if self.api_key is not None:
            return f"key:{self.api_key.id}"
        return f"user:{self.user.id}" if self.user is not None else "anonymous"

    @property
    def organization_id(self) -> uuid.UUID:
        return self.require_organization().id

    def require_organization(self) -> Organization:
        if self.organization is None:
            raise NotFound("You are not a member of any organization. Create one with POST /v1/organizations.")
        return self.organization

    def require_user(self) -> User:
        if self.user is None or self.api_key is not None:
            raise Forbidden("This action needs a signed-in user (a JWT), not an API key.")
        return self.user

    def require(self, scope: Scope) -> None:
        self.require_organization()
        if scope in self.scopes:
            return
        if self.api_key is not None:
            if scope is Scope.owner:
                raise Forbidden(
                    "This action needs the organization's owner: a key with the 'admin' scope created by a "
                    "current owner.",
                    details={"required_scope": str(Scope.admin), "required_role": str(Role.owner)},
                )
            if scope in (Scope(s) for s in self.api_key.scopes if s in Scope.__members__):
                raise Forbidden(
                    f"This API key's creator no longer has a role that allows '{scope}' (their role is '{self.role}').",
                    details={"required_scope": str(scope), "creator_role": str(self.role)},
                )
            raise Forbidden(f"This API key lacks the '{scope}' scope.", details={"required_scope": str(scope)})
        needed = MIN_ROLE[scope]
        raise Forbidden(
            f"Your role '{self.role}' does not allow this action; it requires '{needed}'.",
            details={"required_role": str(needed), "role": str(self.role)},
        )


def user_principal(user: User, organization: Organization | None, role: Role | None) -> Principal:
    scopes = ROLE_SCOPES[role] if role else frozenset()
    return Principal(
        user=user, api_key=None, organization=organization, role=role, scopes=scopes, is_staff=user.is_staff
    )


def key_principal(api_key: ApiKey, organization: Organization, creator: User, creator_role: Role) -> Principal:
    """The key's scopes, within what its creator's current role allows."""
    granted = frozenset(Scope(s) for s in api_key.scopes if s in KEY_SCOPES)
    scopes = granted & ROLE_SCOPES[creator_role]
    if Scope.admin in scopes and creator_role is Role.owner:
        scopes |= {Scope.owner}
    role = next((r for r in (Role.owner, Role.admin, Role.member) if MIN_SCOPE[r] in scopes), Role.viewer)
    return Principal(
        user=creator,
        api_key=api_key,
        organization=organization,
        role=role,
        scopes=scopes,
        livemode=api_key.livemode,
        creator_role=creator_role,
    )
