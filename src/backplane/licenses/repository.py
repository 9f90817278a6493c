from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.config import Settings
from backplane.core.db import RowBatcher, create_engine
from backplane.core.tenancy import TenantRepository
from backplane.events.service import record_event
from backplane.licenses.models import License, LicenseSession
from backplane.licenses.seat_events import ACQUIRED_EVENT, ended_event


class LicenseRepository(TenantRepository[License]):
    """Licenses of one organization in one mode: a test-mode key never sees a live license, nor the
    reverse (another mode's license is 404, like another organization's)."""

    model = License

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID, livemode: bool) -> None:
        super().__init__(session, organization_id)
        self.livemode = livemode

    def select(self) -> Select[License]:
        return super().select().where(License.livemode.is_(self.livemode))

    async def get_by_key(self, key_string: str) -> License | None:
        stmt = self.select().where(License.key_string == key_string)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_page(
        self, *, is_active: bool | None, tier: str | None, offset: int, limit: int
    ) -> tuple[int, Sequence[License]]:
        stmt = self.select()
        if is_active is True:
            stmt = stmt.where(License.is_active.is_(True), License.suspended_at.is_(None))
        elif is_active is False:
            stmt = stmt.where((License.is_active.is_(False)) | License.suspended_at.is_not(None))
        if tier is not None:
            stmt = stmt.where(License.tier == tier)
        total = (await self.session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
        rows = await self.session.execute(
            stmt.order_by(License.created_at.desc(), License.id.desc()).offset(offset).limit(limit)
        )
        return total, rows.scalars().all()

    async def reported_by(self, session_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[str | None, str | None]]:
        """The IP address and client version each of these sessions reported when it acquired its seat
        (from their history rows, of this organization only), in one query."""
        if not session_ids:
            return {}
        rows = await self.session.execute(
            select(LicenseSession.id, LicenseSession.ip_address, LicenseSession.client_version).where(
                LicenseSession.organization_id == self.organization_id, LicenseSession.id.in_(session_ids)
            )
        )
        return {session_id: (ip_address, client_version) for session_id, ip_address, client_version in rows}


async def find_license_for_staff(
    session: AsyncSession, license_id: uuid.UUID, *, for_update: bool = False
) -> License | None:
    """Staff act on any organization's license: the one lookup by id alone."""
    stmt = select(License).where(License.id == license_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_license_by_key(session: AsyncSession, key_string: str) -> License | None:
    """Public validation starts from the key alone, before any organization is known."""
    stmt = select(License).where(License.key_string == key_string)
    return (await session.execute(stmt)).scalar_one_or_none()


class LicenseSessionRepository(TenantRepository[LicenseSession]):
    model = LicenseSession

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID, livemode: bool) -> None:
        super().__init__(session, organization_id)
        self.livemode = livemode

    def select(self) -> Select[LicenseSession]:
        return super().select().where(LicenseSession.livemode.is_(self.livemode))


# How leases ended, a batch in one statement: each session still open gets its end (its last heartbeat
# and count kept if larger), in the order given (WITH ORDINALITY), for the caller's events.
_END_SESSIONS = text("""
UPDATE license_sessions AS s
SET ended_at = e.ended_at, end_reason = e.reason,
    last_heartbeat_at = coalesce(e.last_heartbeat_at, s.last_heartbeat_at),
    heartbeats = greatest(e.heartbeats, s.heartbeats)
FROM unnest(CAST(:ids AS uuid[]), CAST(:reasons AS varchar[]), CAST(:ended_at AS timestamptz[]),
            CAST(:last_heartbeat_at AS timestamptz[]), CAST(:heartbeats AS integer[]))
     WITH ORDINALITY AS e(id, reason, ended_at, last_heartbeat_at, heartbeats, n)
WHERE s.id = e.id AND s.ended_at IS NULL
RETURNING e.n, s.id, s.organization_id, s.license_id, s.hardware_id, s.acquired_at, s.livemode, e.reason, e.ended_at
""")


async def record_ended_sessions(
    session: AsyncSession,
    ended: Sequence[tuple[uuid.UUID, str, datetime, datetime | None, int]],
) -> None:
    """Write how leases ended (id, reason, ended_at, last heartbeat, heartbeats) into their history, with
    a `seat.released` or `seat.expired` event for each row this ends (a row already ended makes none).
    One statement for the batch (after thousands of leases expired at once, a statement each kept the
    worker's other tasks waiting for minutes); a session named twice ends as its first mention says."""
    first: dict[uuid.UUID, tuple[uuid.UUID, str, datetime, datetime | None, int]] = {}
    for row in ended:
        first.setdefault(row[0], row)
    if not first:
        return
    rows = list(first.values())
    result = await session.execute(
        _END_SESSIONS,
        {
            "ids": [row[0] for row in rows],
            "reasons": [row[1] for row in rows],
            "ended_at": [row[2] for row in rows],
            "last_heartbeat_at": [row[3] for row in rows],
            "heartbeats": [row[4] for row in rows],
        },
    )
    for _, session_id, organization_id, license_id, hardware_id, acquired_at, livemode, reason, ended_at in sorted(
        result.all(), key=lambda returned: returned[0]
    ):
        event_type, data = ended_event(session_id, license_id, hardware_id, acquired_at, reason, ended_at)
        record_event(session, organization_id, event_type, data, livemode=livemode)


def session_history(settings: Settings) -> RowBatcher:
    """Where acquires write their history rows (one per seat, before the seat is answered): batched
    across concurrent acquires, so the acquire route's one PostgreSQL write is a share of one statement.
    Its own few connections, each statement committing alone (no BEGIN and COMMIT around it)."""
    engine = create_engine(settings, autocommit=True, pool_size=RowBatcher.MAX_IN_FLIGHT)
    return RowBatcher(engine, LicenseSession.__table__, companion=ACQUIRED_EVENT)  # type: ignore[arg-type]


async def open_sessions(session: AsyncSession) -> list[tuple[License, LicenseSession]]:
    """Every session whose end PostgreSQL has not recorded, with its license (a lease restore reads
    them all, across organizations)."""
    stmt = (
        select(License, LicenseSession)
        .join(LicenseSession, LicenseSession.license_id == License.id)
        .where(LicenseSession.ended_at.is_(None))
        .order_by(License.id)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
