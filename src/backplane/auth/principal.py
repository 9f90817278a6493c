"""Who is calling: resolved once per request from a JWT or an API key."""

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
    owner = "owner"  # never granted to API keys: billing and deleting the organization


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.viewer: frozenset({Scope.read}),
    Role.member: frozenset({Scope.read, Scope.write}),
    Role.admin: frozenset({Scope.read, Scope.write, Scope.admin}),
    Role.owner: frozenset({Scope.read, Scope.write, Scope.admin, Scope.owner}),
}
_MIN_ROLE = {
    Scope.read: Role.viewer,
    Scope.write: Role.member,
    Scope.admin: Role.admin,
    Scope.owner: Role.owner,
}


@dataclass(frozen=True, slots=True)
class Principal:
    user: User | None
    api_key: ApiKey | None
    organization: Organization | None
    role: Role | None
    scopes: frozenset[Scope]
    livemode: bool = True

    @property
    def is_api_key(self) -> bool:
        return self.api_key is not None

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
            raise Forbidden(
                f"This API key lacks the '{scope}' scope.",
                details={"required_scope": str(scope)},
            )
        needed = _MIN_ROLE[scope]
        raise Forbidden(
            f"Your role '{self.role}' does not allow this action; it requires '{needed}'.",
            details={"required_role": str(needed), "role": str(self.role)},
        )


def user_principal(user: User, organization: Organization | None, role: Role | None) -> Principal:
    scopes = ROLE_SCOPES[role] if role else frozenset()
    return Principal(user=user, api_key=None, organization=organization, role=role, scopes=scopes)


def key_principal(api_key: ApiKey, organization: Organization, creator: User | None) -> Principal:
    scopes = frozenset(Scope(s) for s in api_key.scopes if s in Scope.__members__ and s != Scope.owner)
    role = Role.admin if Scope.admin in scopes else Role.member if Scope.write in scopes else Role.viewer
    return Principal(
        user=creator,
        api_key=api_key,
        organization=organization,
        role=role,
        scopes=scopes,
        livemode=api_key.livemode,
    )
