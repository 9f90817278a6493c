"""Seats: acquire, heartbeat and release leases, and keep their history in PostgreSQL.

The live state is Redis (`leases.py`); PostgreSQL gets a row per session at acquire, and how it
ended later, written by the `licenses.record_ended` cron from the leases' ended log, so heartbeats
never wait on PostgreSQL.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.principal import Principal
from backplane.core.db import utcnow
from backplane.core.errors import Conflict, InvalidInput, NotFound
from backplane.licenses import keys
from backplane.licenses.leases import LeaseOwner, Leases
from backplane.licenses.models import License, LicenseSession, SessionEnd
from backplane.licenses.repository import LicenseRepository, LicenseSessionRepository, record_ended_sessions
from backplane.licenses.schemas import AcquireRequest, ReleaseResponse, SessionRead
from backplane.licenses.service import get_license, usable_or_raise

SESSION_GONE = "Session not found or expired. Acquire a seat again."


async def acquire(
    session: AsyncSession, leases: Leases, principal: Principal, data: AcquireRequest, client_ip: str | None, ttl: int
) -> SessionRead:
    canonical = keys.normalize(data.license_key)
    if canonical is None:
        raise InvalidInput({"license_key": ["This is not a valid license key."]})
    license_ = await LicenseRepository(session, principal.organization_id, principal.livemode).get_by_key(canonical)
    if license_ is None:
        raise NotFound("License not found.")
    usable_or_raise(license_)
    acquired = await leases.acquire(license_.id, license_.organization_id, data.hardware_id, license_.seats, ttl)
    if acquired.session_id is None:
        raise Conflict(f"No seats available: all {license_.seats} seats of this license are in use.")
    assert acquired.expires_at is not None
    if acquired.created:
        ip = data.ip_address if data.ip_address and data.ip_address not in ("0.0.0.0", "::") else client_ip
        try:
            LicenseSessionRepository(session, principal.organization_id, license_.livemode).add(
                LicenseSession(
                    id=acquired.session_id,
                    organization_id=license_.organization_id,
                    license_id=license_.id,
                    livemode=license_.livemode,
                    hardware_id=data.hardware_id,
                    ip_address=ip,
                    client_version=data.client_version,
                    acquired_at=utcnow(),
                )
            )
            await session.flush()
        except BaseException:  # no history row, no seat: give it back
            await leases.release(license_.id, acquired.session_id, SessionEnd.released)
            raise
    return _session_read(license_, acquired.session_id, acquired.expires_at, acquired.live)


async def heartbeat(
    session: AsyncSession, leases: Leases, principal: Principal, session_id: uuid.UUID, ttl: int
) -> SessionRead:
    owner = await _own_lease(leases, principal, session_id)
    license_ = await get_license(session, principal.organization_id, owner.license_id, livemode=principal.livemode)
    usable_or_raise(license_)  # a suspended or expired license keeps no seat alive
    result = await leases.heartbeat(owner.license_id, session_id, ttl)
    if result is None:
        raise NotFound(SESSION_GONE)
    expires_at, live = result
    return _session_read(license_, session_id, expires_at, live)


async def release(
    session: AsyncSession, leases: Leases, principal: Principal, session_id: uuid.UUID
) -> ReleaseResponse:
    owner = await _own_lease(leases, principal, session_id)
    license_ = await get_license(session, principal.organization_id, owner.license_id, livemode=principal.livemode)
    released, live = await leases.release(owner.license_id, session_id, SessionEnd.released)
    if not released:
        raise NotFound(SESSION_GONE)
    return ReleaseResponse(message="Seat released.", seats_remaining=max(0, license_.seats - live))


async def revoke(
    session: AsyncSession, leases: Leases, principal: Principal, license_id: uuid.UUID, session_id: uuid.UUID
) -> ReleaseResponse:
    license_ = await get_license(session, principal.organization_id, license_id, livemode=principal.livemode)
    owner = await leases.owner(session_id)
    if owner is None or owner.license_id != license_.id:
        raise NotFound(SESSION_GONE)
    released, live = await leases.release(license_.id, session_id, SessionEnd.revoked)
    if not released:
        raise NotFound(SESSION_GONE)
    return ReleaseResponse(message="Session revoked; its seat is free.", seats_remaining=max(0, license_.seats - live))


async def record_ended_batch(session: AsyncSession, leases: Leases, limit: int = 1000) -> int:
    """Write one batch of ended leases into their history; the caller commits, then acks the count."""
    ended = await leases.peek_ended(limit)
    await record_ended_sessions(
        session, [(e.session_id, e.reason, e.ended_at, e.last_heartbeat_at, e.heartbeats) for e in ended]
    )
    return len(ended)


async def _own_lease(leases: Leases, principal: Principal, session_id: uuid.UUID) -> LeaseOwner:
    owner = await leases.owner(session_id)
    if owner is None or owner.organization_id != principal.organization_id:
        raise NotFound(SESSION_GONE)
    return owner


def _session_read(license_: License, session_id: uuid.UUID, expires_at: object, live: int) -> SessionRead:
    return SessionRead(
        session_id=session_id,
        license_key=license_.key_string,
        expires_at=expires_at,
        is_active=True,
        seats_remaining=max(0, license_.seats - live),
    )
