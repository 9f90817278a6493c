"""The licensing guide's limits: license operations per caller, heartbeats per session, validation per address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.access.authenticate import get_principal
from backplane.access.principal import Principal
from backplane.core.ratelimit import Limit, enforce, per_ip

LICENSE_OPERATIONS = Limit("license", 100)
HEARTBEAT = Limit("heartbeat", 20)  # per session, applied inside the seat scripts (licenses/seats.py)
VALIDATION = Limit("validation", 60)


async def per_caller_license_ops(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> None:
    await enforce(request, principal.caller_id, LICENSE_OPERATIONS)


LicenseOperationsLimit = Depends(per_caller_license_ops)
ValidationLimit = Depends(per_ip(VALIDATION))
