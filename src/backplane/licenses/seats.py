"""Seats: acquire, heartbeat and release leases, and keep their history in PostgreSQL.

The live state is Redis (`leases.py`): each seat route is one script call that admits the caller
(`access/admission.py`), checks the license's state kept beside its leases (`state.py`) and does the
operation, so heartbeat and release never touch PostgreSQL once the caches are warm. PostgreSQL gets
a row per session at acquire (one INSERT, before the seat is answered: a Redis that loses its data
restores leases from those rows) and how it ended later, written by the `licenses.record_ended` cron
from the leases' ended log.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.access.admission import Admission
from backplane.access.principal import Principal
from backplane.core import keys as corekeys
from backplane.core import metrics, versioned
from backplane.core.db import RowBatcher, unit_of_work, utcnow
from backplane.core.errors import AppError, Conflict, InvalidInput, NotFound, ServiceUnavailable
from backplane.core.ratelimit import Limit, enforce
from backplane.licenses import keys, state
from backplane.licenses.leases import EndedLease, Leases
from backplane.licenses.limits import HEARTBEAT, LICENSE_OPERATIONS
from backplane.licenses.models import License, SessionEnd
from backplane.licenses.repository import LicenseRepository, find_license_by_key, record_ended_sessions
from backplane.licenses.schemas import AcquireRequest, LiveSessionList, LiveSessionRead, ReleaseResponse, SessionRead
from backplane.licenses.service import get_license, usable_or_raise

SESSION_GONE = "Session not found or expired. Acquire a seat again."


class _Outcome:
    value = "ok"


@contextmanager
def _counted(operation: str) -> Iterator[_Outcome]:
    """Count one seat operation in `backplane_seat_operations` by its outcome: what the body sets on
    success, else named after the refusal's status."""
    outcome = _Outcome()
    try:
        yield outcome
    except AppError as error:
        outcome.value = metrics.seat_outcome(error.status_code)
        raise
    except BaseException:
        outcome.value = "error"
        raise
    finally:
        metrics.SEAT_OPERATIONS.labels(operation, outcome.value).inc()


async def acquire(admission: Admission, data: AcquireRequest, client_ip: str | None) -> SessionRead:
    with _counted("acquire") as outcome:
        read, created = await _acquire(admission, data, client_ip)
        outcome.value = "acquired" if created else "resumed"
        return read


async def heartbeat(admission: Admission, session_id: uuid.UUID) -> SessionRead:
    with _counted("heartbeat"):
        return await _heartbeat(admission, session_id)


async def release(admission: Admission, session_id: uuid.UUID) -> ReleaseResponse:
    with _counted("release"):
        return await _release(admission, session_id)


async def _acquire(admission: Admission, data: AcquireRequest, client_ip: str | None) -> tuple[SessionRead, bool]:
    leases, ttl = _leases(admission), admission.settings.seat_lease_ttl_seconds
    canonical = keys.normalize(data.license_key)
    if canonical is None:
        await _admit_for_refusal(admission, leases)
        raise InvalidInput({"license_key": ["This is not a valid license key."]})
    index = state.key_index(canonical)

    async def call(admit_keys: list[str], admit_args: list[Any]) -> list[Any]:
        return await leases.acquire_as(admit_keys, admit_args, index, data.hardware_id, ttl)

    reply = await _run(admission, leases, LICENSE_OPERATIONS, admission.caller_id, call, canonical=canonical)
    sid, created, live, expires, seats, key_string, license_id, organization_id = reply[6:14]
    if not sid:
        raise Conflict(f"No seats available: all {seats} seats of this license are in use.")
    session_id, license_uuid = uuid.UUID(sid), uuid.UUID(license_id)
    if int(created):
        ip = data.ip_address if data.ip_address and data.ip_address not in ("0.0.0.0", "::") else client_ip
        history = {
            "id": session_id,
            "organization_id": uuid.UUID(organization_id),
            "license_id": license_uuid,
            "livemode": admission.livemode,
            "hardware_id": data.hardware_id,
            "ip_address": ip,
            "client_version": data.client_version,
            "acquired_at": utcnow(),
        }
        try:
            await _history(admission).insert(history)
        except BaseException:  # no history row, no seat: give it back
            await leases.release(license_uuid, session_id, SessionEnd.released)
            raise
    return _session_read(key_string, session_id, _time(expires), int(seats), int(live)), bool(int(created))


async def _heartbeat(admission: Admission, session_id: uuid.UUID) -> SessionRead:
    leases, ttl = _leases(admission), admission.settings.seat_lease_ttl_seconds

    async def call(admit_keys: list[str], admit_args: list[Any]) -> list[Any]:
        return await leases.heartbeat_as(admit_keys, admit_args, session_id, ttl)

    reply = await _run(admission, leases, HEARTBEAT, f"session:{session_id}", call)
    expires, live, seats, key_string = reply[6:10]
    return _session_read(key_string, session_id, _time(expires), int(seats), int(live))


async def _release(admission: Admission, session_id: uuid.UUID) -> ReleaseResponse:
    leases = _leases(admission)

    async def call(admit_keys: list[str], admit_args: list[Any]) -> list[Any]:
        return await leases.release_as(admit_keys, admit_args, session_id, SessionEnd.released)

    reply = await _run(admission, leases, LICENSE_OPERATIONS, admission.caller_id, call, releasing=True)
    live, seats = int(reply[6]), int(reply[7])
    return ReleaseResponse(message="Seat released.", seats_remaining=max(0, seats - live))


Call = Callable[[list[str], list[Any]], Awaitable[list[Any]]]
MAX_ROUNDS = 6  # caller resolved, key indexed, state copied, stale state dropped, leases restored, done


async def _run(
    admission: Admission,
    leases: Leases,
    limit: Limit,
    subject: str,
    call: Call,
    *,
    canonical: str | None = None,
    releasing: bool = False,
) -> list[Any]:
    """One seat script until it answers 'ok': each other answer names what Redis lacked, which is put
    there (from PostgreSQL) before the next round; or the refusal the caller gets."""
    applied: Limit | None = None
    for _ in range(MAX_ROUNDS):
        admit_keys, admit_args = admission.script_keys_args(None if applied else limit, subject)
        reply = await call(admit_keys, admit_args)
        applied = applied or (limit if reply[1] != "" else None)
        if not admission.admitted(reply, limit):
            await admission.resolve(reply)
            continue
        code = reply[0]
        if code == "ok":
            return reply
        if code == "gone":
            raise NotFound(SESSION_GONE)
        if code == "elsewhere":
            raise NotFound("License not found.")
        if code == "restore":
            await leases.ensure_restored()
        elif code == "key?":
            assert canonical is not None
            await _index_key(admission, canonical)
        elif code in ("state?", "unusable"):
            await _copy_state(admission, uuid.UUID(reply[6]), reply[7] if code == "state?" else None, releasing)
        else:
            raise RuntimeError(f"unexpected seat script answer {code!r}")
    raise ServiceUnavailable("Seat state is changing too fast to answer; retry.", headers={"Retry-After": "1"})


async def _index_key(admission: Admission, canonical: str) -> None:
    """The license with this key in Redis's index, or 404 (the caller's organization and mode are
    checked by the script, from the license's state). Concurrent misses share one read."""
    state_ = admission.request.app.state

    async def read() -> None:
        async with unit_of_work(state_.sessionmaker) as session:
            license_ = await find_license_by_key(session, canonical)
        if license_ is None:
            raise NotFound("License not found.")
        await state_.redis.set(state.key_index(canonical), str(license_.id), ex=state.KEY_INDEX_TTL_SECONDS)

    await state_.shared_fills.run(("license key", canonical), read)


async def _copy_state(admission: Admission, license_id: uuid.UUID, generation: str | None, releasing: bool) -> None:
    """Copy the license's state into Redis after a miss (`generation`: what the script saw), or check an
    'unusable' answer against PostgreSQL: the exact refusal, or a stale copy dropped. Concurrent misses
    with the same generation share one read."""
    state_ = admission.request.app.state

    async def read() -> None:
        async with unit_of_work(state_.sessionmaker) as session:
            license_ = await session.get(License, license_id)
        if license_ is None:  # deleted with its organization
            raise NotFound(SESSION_GONE)
        if generation is not None:
            await state.fill(state_.redis, license_, generation)
            return
        if not releasing:
            usable_or_raise(license_)
        await versioned.invalidate(state_.redis, [corekeys.license_state(license_id)])

    await state_.shared_fills.run(("license state", license_id, generation, releasing), read)


async def _admit_for_refusal(admission: Admission, leases: Leases) -> None:
    """A request refused for its body is still a request: admitted and counted like any other."""
    await admission.resolve(["deny"])
    if admission.request.app.state.settings.rate_limits_enabled:
        await enforce(admission.request, admission.caller_id, LICENSE_OPERATIONS)


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


async def live_sessions(session: AsyncSession, leases: Leases, license_: License, limit: int) -> LiveSessionList:
    """A license's live sessions (at most `limit`, soonest to expire first), each with the IP address and
    client version its machine reported at acquire; the organization's admins and staff see the same."""
    live = await leases.live(license_.id, limit)
    reported = await LicenseRepository(session, license_.organization_id, license_.livemode).reported_by(
        [lease.session_id for lease in live]
    )
    rows = [
        LiveSessionRead.model_validate(lease, from_attributes=True).model_copy(
            update=dict(
                zip(("ip_address", "client_version"), reported.get(lease.session_id, (None, None)), strict=True)
            )
        )
        for lease in live
    ]
    return LiveSessionList(count=await leases.live_count(license_.id), seats=license_.seats, sessions=rows)


async def record_ended_batch(session: AsyncSession, leases: Leases, limit: int = 1000) -> list[EndedLease]:
    """Write one batch of ended leases into their history; the caller commits, then acks the count."""
    ended = await leases.peek_ended(limit)
    await record_ended_sessions(
        session, [(e.session_id, e.reason, e.ended_at, e.last_heartbeat_at, e.heartbeats) for e in ended]
    )
    return ended


def _session_read(key_string: str, session_id: uuid.UUID, expires_at: object, seats: int, live: int) -> SessionRead:
    return SessionRead(
        session_id=session_id,
        license_key=key_string,
        expires_at=expires_at,
        is_active=True,
        seats_remaining=max(0, seats - live),
    )


def _history(admission: Admission) -> RowBatcher:
    history: RowBatcher = admission.request.app.state.session_history
    return history


def _leases(admission: Admission) -> Leases:
    leases: Leases = admission.request.app.state.leases
    return leases


def _time(ms: int | str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)
