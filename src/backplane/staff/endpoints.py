"""`/v1/staff`: what platform staff did, readable by staff only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from backplane.access.requirements import Staff
from backplane.billing.deps import PlatformLimit
from backplane.core.db import SessionDep
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, page_params, paginate
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
