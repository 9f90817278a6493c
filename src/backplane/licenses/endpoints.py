"""Licensing surface: `/api/v1/licenses/...`, with the guide's trailing slashes."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from backplane.access import admission
from backplane.access.admission import SeatWriter
from backplane.access.requirements import Admin, AdminOrStaff, Public, Reader
from backplane.core.client_ip import client_ip
from backplane.core.db import SessionDep
from backplane.core.deps import SettingsDep
from backplane.core.openapi import licensing_errors
from backplane.licenses import seats, service
from backplane.licenses.deps import LeasesDep, SessionsLimit
from backplane.licenses.limits import LicenseOperationsLimit, ValidationLimit
from backplane.licenses.repository import LicenseRepository
from backplane.licenses.schemas import (
    AcquireRequest,
    LicenseCreate,
    LicenseList,
    LicenseRead,
    LicenseUpdate,
    LiveSessionList,
    ReleaseResponse,
    SessionRead,
    TierName,
    ValidateRequest,
    ValidateResponse,
)

router = APIRouter(prefix="/api/v1/licenses", tags=["Licenses"], responses=licensing_errors(400, 401, 403, 404, 429))
sessions_tags: list[str | Enum] = ["License seats"]
# The seat routes, the hot path of every licensed machine: included first, so that routing them does
# not first try every other route of the service.
seats_router = APIRouter(
    prefix="/api/v1/licenses", tags=sessions_tags, responses=licensing_errors(400, 401, 403, 404, 429)
)


@router.post(
    "/validate/",
    response_model=ValidateResponse,
    dependencies=[Public("licensed software checks a key before signing in"), ValidationLimit],
    summary="Validate a license key (public, no authentication)",
    description="Always 200 for a well-formed request: `valid` says whether the key is usable, `code` "
    "(VALID, NOT_FOUND, MALFORMED, SUSPENDED, INACTIVE, EXPIRED) says why not, `reason` in words.",
)
async def validate_license(body: ValidateRequest, session: SessionDep) -> ValidateResponse:
    return await service.validate_key(session, body.key_string)


@seats_router.post(
    "/acquire/",
    response_model=SessionRead,
    openapi_extra=admission.OPENAPI,
    summary="Acquire a seat for this machine",
    description="Leases one seat for SEAT_LEASE_TTL_SECONDS; heartbeat to keep it. The same `hardware_id` "
    "gets its live session back instead of a second seat. 409 when every seat is in use; 403 when the "
    "license is expired, suspended or inactive.",
    responses=licensing_errors(409),
)
async def acquire_seat(body: AcquireRequest, request: Request, admission: SeatWriter) -> SessionRead:
    ip = client_ip(request, request.app.state.trusted_proxies)
    return await seats.acquire(admission, body, ip)


@seats_router.patch(
    "/sessions/{session_id}/heartbeat/",
    response_model=SessionRead,
    openapi_extra=admission.OPENAPI,
    summary="Keep a seat: extend its lease",
    description="Extends the lease by SEAT_LEASE_TTL_SECONDS. 404 when the session expired or was released: "
    "acquire again.",
)
async def heartbeat(session_id: uuid.UUID, admission: SeatWriter) -> SessionRead:
    return await seats.heartbeat(admission, session_id)


@seats_router.delete(
    "/sessions/{session_id}/",
    response_model=ReleaseResponse,
    openapi_extra=admission.OPENAPI,
    summary="Release a seat",
)
async def release_seat(session_id: uuid.UUID, admission: SeatWriter) -> ReleaseResponse:
    return await seats.release(admission, session_id)


@router.get(
    "/", dependencies=[LicenseOperationsLimit], response_model=LicenseList, summary="List the organization's licenses"
)
async def list_licenses(
    request: Request,
    principal: Reader,
    session: SessionDep,
    leases: LeasesDep,
    is_active: Annotated[bool | None, Query(description="Only usable (true) or unusable (false) licenses.")] = None,
    tier: Annotated[TierName | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LicenseList:
    total, rows = await LicenseRepository(session, principal.organization_id, principal.livemode).list_page(
        is_active=is_active, tier=tier, offset=(page - 1) * page_size, limit=page_size
    )
    next_url = str(request.url.include_query_params(page=page + 1)) if page * page_size < total else None
    previous = str(request.url.include_query_params(page=page - 1)) if page > 1 else None
    live = await leases.live_counts([r.id for r in rows])  # the page's live seats, in one Redis round trip
    licenses = [service.license_read(r, seats_in_use=live[r.id]) for r in rows]
    return LicenseList(count=total, licenses=licenses, next=next_url, previous=previous)


@router.post(
    "/",
    dependencies=[LicenseOperationsLimit],
    status_code=status.HTTP_201_CREATED,
    response_model=LicenseRead,
    summary="Issue a license (platform staff; test-mode keys: test licenses)",
    description="Live licenses come from the subscription (a completed checkout), from the free plan, or from "
    "platform staff: a staff user's JWT issues one to any organization (`organization_id`). A test-mode key with "
    "the `admin` scope issues test licenses (at most 5 seats and 30 days) for integration tests. Anyone else: 403.",
)
async def create_license(
    body: LicenseCreate, principal: AdminOrStaff, session: SessionDep, settings: SettingsDep
) -> LicenseRead:
    license_ = await service.create_for(session, principal, body, settings)
    return service.license_read(license_, seats_in_use=0)


@router.get(
    "/{license_id}/", dependencies=[LicenseOperationsLimit], response_model=LicenseRead, summary="Get a license"
)
async def get_license(license_id: uuid.UUID, principal: Reader, session: SessionDep, leases: LeasesDep) -> LicenseRead:
    license_ = await service.get_license(session, principal.organization_id, license_id, livemode=principal.livemode)
    return service.license_read(license_, seats_in_use=await leases.live_count(license_.id))


@router.patch(
    "/{license_id}/",
    dependencies=[LicenseOperationsLimit],
    response_model=LicenseRead,
    summary="Suspend or reactivate a license, change its metadata (admin); anything (platform staff)",
    description="A live license's tier, seats, expiry and activation follow its subscription (403 for a customer "
    "admin); test licenses may change within the test limits; platform staff may change any license. Reducing "
    "seats below the live sessions keeps those sessions; new acquires wait for seats to free.",
)
async def update_license(
    license_id: uuid.UUID, body: LicenseUpdate, principal: AdminOrStaff, session: SessionDep, leases: LeasesDep
) -> LicenseRead:
    license_ = await service.update_for(session, principal, license_id, body)
    return service.license_read(license_, seats_in_use=await leases.live_count(license_.id))


@router.get(
    "/{license_id}/sessions/",
    dependencies=[LicenseOperationsLimit],
    response_model=LiveSessionList,
    tags=sessions_tags,
    summary="Live sessions (admin)",
)
async def list_sessions(
    license_id: uuid.UUID,
    principal: Admin,
    session: SessionDep,
    leases: LeasesDep,
    limit: SessionsLimit = 100,
) -> LiveSessionList:
    license_ = await service.get_license(session, principal.organization_id, license_id, livemode=principal.livemode)
    return await seats.live_sessions(session, leases, license_, limit)


@router.delete(
    "/{license_id}/sessions/{session_id}/",
    dependencies=[LicenseOperationsLimit],
    response_model=ReleaseResponse,
    tags=sessions_tags,
    summary="Revoke a session (admin): its seat is free at once",
)
async def revoke_session(
    license_id: uuid.UUID, session_id: uuid.UUID, principal: Admin, session: SessionDep, leases: LeasesDep
) -> ReleaseResponse:
    return await seats.revoke(session, leases, principal, license_id, session_id)
