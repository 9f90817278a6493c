"""What a route needs, declared once where the route is.

Every route has exactly one `Requirement` among its dependencies (a test walks the OpenAPI
document and the routes to hold us to it), and the requirement is what runs the check before
anything else of the route's own: an `Idempotency-Key` is claimed or replayed only after it passed,
so a replay never answers a caller the route itself would refuse. Each requirement describes
itself in the route's OpenAPI entry as `x-access`.

    @router.post("/things")
    async def create_thing(principal: Writer, ...): ...          # scope `write` (or role member+)

    @router.get("/plans", dependencies=[Public("the price list")])
    async def plans(): ...
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from backplane.access.authenticate import get_principal, path_organization_principal
from backplane.access.principal import Principal, Scope
from backplane.core.db import SessionDep
from backplane.core.errors import AppError, Forbidden
from backplane.core.logs import bind_log_context
from backplane.idempotency.service import claim_for

IDEMPOTENT_STATE = "idempotent_route"


class LiveModeRequired(AppError):
    status_code, code, title = 403, "LIVE_MODE_REQUIRED", "Forbidden"
    default_message = (
        "This action needs live mode: use a live API key (`coexai_live_…`) or a signed-in user without "
        "`X-Backplane-Mode: test`."
    )


class StaffRequired(Forbidden):
    default_message = "This action is for platform staff only."


class Requirement(ABC):
    """Base of every route's declared requirement (see the module's docstring)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the caller needs, for the route's OpenAPI entry (`x-access`)."""


class PublicAccess(Requirement):
    """No caller needed; `why` says why the route is open, for the reader and the OpenAPI entry."""

    def __init__(self, why: str) -> None:
        self.why = why

    def describe(self) -> dict[str, Any]:
        return {"public": True, "why": self.why}

    async def __call__(self) -> None:
        return None


def Public(why: str) -> Any:
    """A route open to anyone: `dependencies=[Public("why")]`."""
    return Depends(PublicAccess(why))


class Require(Requirement):
    """An authenticated caller with `scope` in its organization (a user's role implies scopes; a key's
    scopes are cut to its creator's current role). `user`: a signed-in user, not an API key. `live`:
    live mode only. `or_staff`: platform staff pass whatever their role. `staff`: staff only."""

    def __init__(
        self,
        scope: Scope | None = None,
        *,
        live: bool = False,
        user: bool = False,
        or_staff: bool = False,
        staff: bool = False,
    ) -> None:
        self.scope, self.live, self.user, self.or_staff, self.staff = scope, live, user, or_staff, staff

    def describe(self) -> dict[str, Any]:
        access: dict[str, Any] = {"public": False, "caller": "user" if self.user or self.staff else "user or API key"}
        if self.scope is not None:
            access["scope"] = str(self.scope)
        if self.staff:
            access["staff"] = "required"
        elif self.or_staff:
            access["staff"] = "allowed"
        access["mode"] = "live" if self.live else "live or test"
        return access

    def check(self, principal: Principal) -> None:
        if principal.organization is not None:
            bind_log_context(organization_id=principal.organization.id)  # the request's lines say whose it is
        if self.user or self.staff:
            principal.require_user()
        if self.staff and not principal.is_staff:
            raise StaffRequired()
        if self.scope is not None and not (self.or_staff and principal.is_staff):
            principal.require(self.scope)
        if self.live and not principal.livemode:
            raise LiveModeRequired()

    async def __call__(self, request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        self.check(principal)
        await _claim_idempotency(request, principal)
        return principal


class RequireInPathOrganization(Require):
    """Like `Require`, acting in the organization named by the path (`{organization_id}`); 404 for one
    the caller is not in."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "organization": "from the path"}

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        organization_id: Annotated[uuid.UUID, Path(description="Organization id.")],
        principal: Annotated[Principal, Depends(get_principal)],
        session: SessionDep,
    ) -> Principal:
        acting = await path_organization_principal(principal, organization_id, session)
        self.check(acting)
        await _claim_idempotency(request, acting)
        return acting


async def idempotent(request: Request) -> None:
    """Router dependency: POSTs of this router honour `Idempotency-Key` (claimed by the requirement)."""
    request.state.idempotent_route = True


Idempotent = Depends(idempotent)


async def _claim_idempotency(request: Request, principal: Principal) -> None:
    if request.method == "POST" and getattr(request.state, IDEMPOTENT_STATE, False):
        organization_id = principal.organization.id if principal.organization is not None else None
        await claim_for(request, organization_id, principal.livemode, principal.caller_id)


Authenticated = Annotated[Principal, Depends(Require())]
SignedInUser = Annotated[Principal, Depends(Require(user=True))]
Reader = Annotated[Principal, Depends(Require(Scope.read))]
Writer = Annotated[Principal, Depends(Require(Scope.write))]
Admin = Annotated[Principal, Depends(Require(Scope.admin))]
LiveReader = Annotated[Principal, Depends(Require(Scope.read, live=True))]
LiveAdmin = Annotated[Principal, Depends(Require(Scope.admin, live=True))]
LiveOwner = Annotated[Principal, Depends(Require(Scope.owner, live=True))]
AdminOrStaff = Annotated[Principal, Depends(Require(Scope.admin, or_staff=True))]
Staff = Annotated[Principal, Depends(Require(staff=True))]
OrgReader = Annotated[Principal, Depends(RequireInPathOrganization(Scope.read))]
OrgAdmin = Annotated[Principal, Depends(RequireInPathOrganization(Scope.admin))]
OrgOwner = Annotated[Principal, Depends(RequireInPathOrganization(Scope.owner))]
OrgMember = Annotated[Principal, Depends(RequireInPathOrganization())]
