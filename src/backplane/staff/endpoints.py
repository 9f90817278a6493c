"""`/v1/staff`: what platform staff did, readable by staff only, and agents' maintenance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backplane.access.requirements import Staff
from backplane.auth.models import User
from backplane.billing.deps import PlatformLimit
from backplane.core.db import SessionDep
from backplane.core.errors import NotFound
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, page_params, paginate
from backplane.jobs import maintenance
from backplane.licenses import seats
from backplane.licenses.deps import LeasesDep, SessionsLimit
from backplane.licenses.repository import find_license_for_staff
from backplane.licenses.schemas import LiveSessionList
from backplane.organizations.models import Organization
from backplane.staff import console, repository
from backplane.staff import service as staff_service
from backplane.staff.models import StaffAction
from backplane.staff.repository import StaffActionRepository

router = APIRouter(
    prefix="/v1/staff",
    tags=["Staff"],
    responses=platform_errors(401, 403, 422, 429),
    dependencies=[PlatformLimit],
)


class StaffActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    actor: str
    staff_user_id: uuid.UUID | None
    action: str
    organization_id: uuid.UUID | None
    target_id: str | None
    details: dict[str, Any]
    created_at: datetime


@router.get(
    "/actions",
    response_model=Page[StaffActionRead],
    summary="Staff actions (staff only)",
    description="Every action of platform staff (who, what, when), oldest first; filter by organization.",
)
async def list_staff_actions(
    principal: Staff,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    organization_id: Annotated[uuid.UUID | None, Query(description="Only actions on this organization.")] = None,
) -> Page[StaffActionRead]:
    stmt = StaffActionRepository(session).select()
    if organization_id is not None:
        stmt = stmt.where(StaffAction.organization_id == organization_id)
    rows, cursor = await paginate(session, stmt, page, StaffAction.created_at, StaffAction.id)
    return Page(
        data=[StaffActionRead.model_validate(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor
    )


SearchQuery = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Query(description="Text to find (case-insensitive, anywhere in the field), or an exact id; none: all."),
]


@router.get(
    "/organizations",
    response_model=Page[console.StaffOrganizationRead],
    summary="Find organizations (staff only)",
    description="Organizations whose name or slug contains `q`, whose id is `q`, or that have a member whose email "
    "contains `q`; newest first, paginated like other lists.",
)
async def search_organizations(
    principal: Staff,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[SearchQuery, Query(examples=["acme"])] = None,
) -> Page[console.StaffOrganizationRead]:
    stmt = repository.search_organizations(q)
    rows, cursor = await paginate(session, stmt, page, Organization.created_at, Organization.id)
    return Page(data=[console.organization_read(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get(
    "/organizations/{organization_id}",
    response_model=console.StaffOrganizationDetail,
    summary="An organization whole (staff only)",
    description="Its subscription (plan, status, seats, period), this month's live usage as `GET /v1/usage` "
    "computes it, its licenses with their live seats, and its members. To issue or change a license: "
    "`POST /api/v1/licenses/` and `PATCH /api/v1/licenses/{id}/` as staff.",
    responses=platform_errors(404),
)
async def read_organization(
    organization_id: uuid.UUID, principal: Staff, session: SessionDep, request: Request
) -> console.StaffOrganizationDetail:
    return await console.organization_detail(request, session, organization_id)


@router.get(
    "/licenses/{license_id}/sessions",
    response_model=LiveSessionList,
    summary="Any license's live sessions (staff only)",
    description="What `GET /api/v1/licenses/{id}/sessions/` shows the organization's admins, for any "
    "organization's license (live or test): each live session with its hardware id, the IP address and client "
    "version it reported, its last heartbeat and expiry, soonest to expire first; `count` is every live session, "
    "`seats` the license's. To revoke one: the organization's own route. Reads are not recorded as staff actions.",
    responses=platform_errors(404),
)
async def list_license_sessions(
    license_id: uuid.UUID,
    principal: Staff,
    session: SessionDep,
    leases: LeasesDep,
    limit: SessionsLimit = 100,
) -> LiveSessionList:
    license_ = await find_license_for_staff(session, license_id)
    if license_ is None:
        raise NotFound("License not found.")
    return await seats.live_sessions(session, leases, license_, limit)


@router.get(
    "/users",
    response_model=Page[console.StaffUserRead],
    summary="Find users (staff only)",
    description="Users whose email or full name contains `q`, or whose id is `q`, with their organizations; "
    "newest first, paginated like other lists.",
)
async def search_users(
    principal: Staff,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[SearchQuery, Query(examples=["dev@example.com"])] = None,
) -> Page[console.StaffUserRead]:
    rows, cursor = await paginate(session, repository.search_users(q), page, User.created_at, User.id)
    users = await console.users_read(session, [r[0] for r in rows])
    return Page(data=users, has_more=cursor is not None, next_cursor=cursor)


class MaintenanceStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="Why, as the agent's waiting jobs will show it (`status_reason`).",
        examples=["upgrading the transcription model"],
    )


class AgentStateRead(BaseModel):
    agent_id: str
    status: Literal["available", "maintenance"]
    reason: str | None
    since: datetime | None


def _state_read(state: maintenance.AgentState) -> AgentStateRead:
    return AgentStateRead(
        agent_id=state.agent_id,
        status="maintenance" if state.maintenance else "available",
        reason=state.reason,
        since=state.since,
    )


@router.put(
    "/agents/{agent_id}/maintenance",
    response_model=AgentStateRead,
    summary="Put an agent under maintenance (staff only)",
    description="Its new jobs are accepted and wait queued with a `status_reason`; none is handed out until the "
    "maintenance ends. Jobs already running go on. Again with another reason: the reason changes. Recorded as a "
    "staff action.",
    responses=platform_errors(404),
)
async def start_maintenance(
    agent_id: str, body: MaintenanceStart, principal: Staff, session: SessionDep
) -> AgentStateRead:
    actor = staff_service.actor_of(principal.user)
    return _state_read(await maintenance.start(session, agent_id, body.reason, actor))


@router.delete(
    "/agents/{agent_id}/maintenance",
    response_model=AgentStateRead,
    summary="End an agent's maintenance (staff only)",
    description="Its waiting jobs are handed out at once, best priority first, then oldest, within each "
    "organization's concurrency. Ending a maintenance that is not on changes nothing.",
    responses=platform_errors(404),
)
async def end_maintenance(agent_id: str, principal: Staff, session: SessionDep, request: Request) -> AgentStateRead:
    state, organizations = await maintenance.end(session, agent_id, staff_service.actor_of(principal.user))
    dispatcher = request.app.state.dispatcher
    for organization_id in organizations:
        dispatcher.dispatch_after_commit(session, organization_id)
    return _state_read(state)
