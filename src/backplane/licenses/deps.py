from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from backplane.licenses.leases import Leases


async def _leases(request: Request) -> Leases:
    leases: Leases = request.app.state.leases
    return leases


LeasesDep = Annotated[Leases, Depends(_leases)]
# `?limit=` of the live-sessions lists (the organization's and staff's).
SessionsLimit = Annotated[int, Query(ge=1, le=1000, description="At most this many sessions, soonest to expire first.")]
