"""Seat leases after Redis lost its data: rebuilt from PostgreSQL's open sessions.

Redis holds the live leases; PostgreSQL has a row for every session, open until the worker records
how it ended. When Redis comes back empty (a restart without persistence), every open session gets
its lease back for one SEAT_LEASE_TTL_SECONDS from the restore, as if it had just heartbeated: a
machine still running keeps its session id and its next heartbeat simply succeeds, a machine that
is gone loses its seat when that grace ends (recorded as `expired`). A session that does not fit
(its machine holds a newer session, or its license has no seat left) ends at once. The first
caller that finds the leases missing restores them (the worker's monitor, or any seat request)
under a Redis lock; a request that finds another process restoring waits briefly, else answers
503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from backplane.core import keys
from backplane.core.config import Settings
from backplane.licenses.leases import Leases, OpenSession, SeatsRestoring
from backplane.licenses.models import License
from backplane.licenses.repository import open_sessions

logger = logging.getLogger(__name__)

LOCK = keys.LEASES_RESTORING
LOCK_MS = 60_000
WAIT_SECONDS = 5.0  # how long a seat request waits for another process's restore


class LeaseRestorer:
    """The `restore` callback of `Leases`: rebuilds them once from PostgreSQL.

    It reads through a connection of its own, not the process's pool: the seat requests waiting for
    the restore each hold a pooled connection, and may hold them all.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ttl_seconds = settings.seat_lease_ttl_seconds

    async def __call__(self, leases: Leases) -> None:
        token = secrets.token_hex(8)
        if not await leases.redis.set(LOCK, token, nx=True, px=LOCK_MS):
            await self._wait_for_other(leases)
            return
        try:
            if not await leases.restored():
                await self._restore(leases)
        finally:
            if await leases.redis.get(LOCK) == token:
                await leases.redis.delete(LOCK)

    async def _restore(self, leases: Leases) -> None:
        engine = create_async_engine(
            self.settings.database.url,
            poolclass=NullPool,
            connect_args={"timeout": self.settings.database.connect_timeout_seconds},
        )
        try:
            async with AsyncSession(engine) as session:
                rows = await open_sessions(session)
        finally:
            await engine.dispose()
        licenses: dict[uuid.UUID, License] = {}
        sessions: defaultdict[uuid.UUID, list[OpenSession]] = defaultdict(list)
        for license_, row in rows:
            licenses[license_.id] = license_
            sessions[license_.id].append(OpenSession(row.id, row.hardware_id, row.acquired_at))
        restored = ended = 0
        for license_id, license_ in licenses.items():
            kept, gone = await leases.restore(
                license_id, license_.organization_id, license_.seats, self.ttl_seconds, sessions[license_id]
            )
            restored, ended = restored + kept, ended + gone
        await leases.mark_restored()
        if rows:
            logger.warning(
                "seat leases restored from PostgreSQL after Redis lost them: %d sessions kept for %d s, %d ended",
                restored,
                self.ttl_seconds,
                ended,
            )

    async def _wait_for_other(self, leases: Leases) -> None:
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while not await leases.restored():
            if asyncio.get_running_loop().time() > deadline:
                raise SeatsRestoring(headers={"Retry-After": "2"})
            await asyncio.sleep(0.1)
