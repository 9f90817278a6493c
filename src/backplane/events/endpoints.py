"""`/v1/events`: every event of the organization, delivered or not, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from backplane.access.requirements import Reader
from backplane.billing.deps import PlatformLimit
from backplane.core.db import SessionDep
from backplane.core.errors import NotFound
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, created_between, page_params, paginate
from backplane.events import catalog
from backplane.events.models import Event
from backplane.events.repository import EventRepository
from backplane.events.schemas import EventRead
from backplane.events.service import EventType
from backplane.webhooks.repository import delivery_success as delivery_success_filter

router = APIRouter(
    prefix="/v1/events",
    tags=["Events"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit],
)


@router.get(
    "",
    response_model=Page[EventRead],
    summary="List events",
    description="Newest first, with cursor pagination (`limit`, then `cursor=<next_cursor>`). Every event stays "
    "here after its webhooks are done with it, so an integration can catch up on what it missed: filter by "
    "`type` and by time (`created_after`, `created_before`: ISO 8601 with a timezone, both exclusive), and "
    "`delivery_success=false` lists the events some webhook did not receive even after its last retry "
    "(`true`: those every webhook received). The filters combine, and a cursor keeps them only if they are "
    "sent again with it. A test-mode API key sees test-mode events.",
)
async def list_events(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    event_type: Annotated[EventType | None, Query(alias="type", description="Only events of this type.")] = None,
    created_after: Annotated[
        AwareDatetime | None,
        Query(description="Only events created after this moment.", examples=["2024-01-15T10:30:00Z"]),
    ] = None,
    created_before: Annotated[
        AwareDatetime | None,
        Query(description="Only events created before this moment.", examples=["2024-01-16T00:00:00Z"]),
    ] = None,
    delivery_success: Annotated[bool | None, Query(description="Filter by webhook delivery outcome.")] = None,
) -> Page[EventRead]:
    stmt = EventRepository(session, principal.organization_id, principal.livemode).select()
    if event_type is not None:
        stmt = stmt.where(Event.type == event_type)
    stmt = created_between(stmt, Event.created_at, created_after, created_before)
    if delivery_success is not None:
        stmt = stmt.where(delivery_success_filter(delivery_success))
    rows, cursor = await paginate(session, stmt, page, Event.created_at, Event.id)
    return Page(data=[EventRead.model_validate(r[0]) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get(
    "/{event_id}",
    response_model=EventRead,
    summary="Get an event",
    description="Any event of the organization (and of the key's mode), however its deliveries ended.",
)
async def get_event(event_id: str, principal: Reader, session: SessionDep) -> EventRead:
    event = await EventRepository(session, principal.organization_id, principal.livemode).get_by_public_id(event_id)
    if event is None:
        raise NotFound("No event with this id.")
    return EventRead.model_validate(event)


types_router = APIRouter(
    prefix="/v1/event-types",
    tags=["Events"],
    responses=platform_errors(401, 403, 429),
    dependencies=[PlatformLimit],
)


class EventTypeRead(BaseModel):
    type: str = Field(examples=["job.completed"])
    description: str
    data_schema: dict[str, Any] = Field(description="The JSON Schema of the event's `data`.")


@types_router.get(
    "",
    response_model=list[EventTypeRead],
    summary="Every event type, with the JSON Schema of its data",
    description="What webhooks may subscribe to and `/v1/events` may hold; each `data_schema` is generated from "
    "the model that builds the events' data.",
)
async def list_event_types(principal: Reader) -> list[EventTypeRead]:
    return [
        EventTypeRead(type=name, description=description, data_schema=catalog.schema_of(name))
        for name, (description, _) in catalog.CATALOG.items()
    ]
