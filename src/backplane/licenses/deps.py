from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.licenses.leases import Leases


async def _leases(request: Request) -> Leases:
    leases: Leases = request.app.state.leases
    return leases


LeasesDep = Annotated[Leases, Depends(_leases)]
