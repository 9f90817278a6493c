from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path

from backplane.auth.deps import Authenticated, require
from backplane.auth.principal import Principal, Scope, user_principal
from backplane.core.db import SessionDep
from backplane.core.errors import NotFound
from backplane.organizations.models import Role
from backplane.organizations.repository import MembershipRepository


async def path_organization(
    organization_id: Annotated[uuid.UUID, Path(description="Organization id.")],
    principal: Authenticated,
    session: SessionDep,
) -> Principal:
    """The caller acting in the organization named by the path; 404 if they are not in it."""
    if principal.api_key is not None:
        if principal.organization is None or principal.organization.id != organization_id:
            raise NotFound("Organization not found.")
        return principal
    user = principal.require_user()
    found = await MembershipRepository(session).get_with_organization(user.id, organization_id)
    if found is None:
        raise NotFound("Organization not found.")
    membership, organization = found
    return user_principal(user, organization, Role(membership.role))


OrgReader = Annotated[Principal, Depends(require(Scope.read, path_organization))]
OrgAdmin = Annotated[Principal, Depends(require(Scope.admin, path_organization))]
OrgMember = Annotated[Principal, Depends(path_organization)]
