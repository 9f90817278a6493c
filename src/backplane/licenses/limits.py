"""The licensing guide's limits: license operations per caller, heartbeats per session, validation per address."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request

from backplane.access.authenticate import get_principal
from backplane.access.principal import Principal
from backplane.core.ratelimit import Limit, enforce, per_ip

LICENSE_OPERATIONS = Limit("license", 100)
HEARTBEAT = Limit("heartbeat", 20)
VALIDATION = Limit("validation", 60)


async def per_caller_license_ops(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> None:
    await enforce(request, principal.caller_id, LICENSE_OPERATIONS)


async def per_session_heartbeat(request: Request, session_id: Annotated[uuid.UUID, Path()]) -> None:
    await enforce(request, f"session:{session_id}", HEARTBEAT)


LicenseOperationsLimit = Depends(per_caller_license_ops)
HeartbeatLimit = Depends(per_session_heartbeat)
ValidationLimit = Depends(per_ip(VALIDATION))
