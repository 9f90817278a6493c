"""Which limit applies where: the licensing guide's categories and the platform's plan tiers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from backplane.auth.deps import Authenticated
from backplane.auth.principal import Principal
from backplane.billing.deps import PlanDep
from backplane.core.client_ip import client_ip
from backplane.core.ratelimit import STATE_KEY, Limit, RateLimited, RateLimiter

AUTHENTICATION = Limit("authentication", 5)
LICENSE_OPERATIONS = Limit("license", 100)
HEARTBEAT = Limit("heartbeat", 20)
VALIDATION = Limit("validation", 60)


async def _enforce(request: Request, subject: str, limit: Limit) -> None:
    if not request.app.state.settings.rate_limits_enabled:
        return
    limiter: RateLimiter = request.app.state.limiter
    decision = await limiter.hit(subject, limit)
    request.scope.setdefault("state", {})[STATE_KEY] = decision
    if not decision.allowed:
        raise RateLimited(decision)


def _ip(request: Request) -> str:
    return client_ip(request, request.app.state.trusted_proxies) or "unknown"


def per_ip(limit: Limit) -> Callable[[Request], Awaitable[None]]:
    async def dependency(request: Request) -> None:
        await _enforce(request, f"ip:{_ip(request)}", limit)

    return dependency


def _caller(principal: Principal) -> str:
    if principal.api_key is not None:
        return f"key:{principal.api_key.id}"
    return f"user:{principal.user.id}" if principal.user else "anonymous"


async def per_caller_license_ops(request: Request, principal: Authenticated) -> None:
    await _enforce(request, _caller(principal), LICENSE_OPERATIONS)


async def per_session_heartbeat(request: Request, session_id: Annotated[uuid.UUID, Path()]) -> None:
    await _enforce(request, f"session:{session_id}", HEARTBEAT)


async def per_organization_plan(request: Request, principal: Authenticated, plan: PlanDep) -> None:
    """Platform tier by the organization's plan in force (resolved once per request, cached in Redis)."""
    if not request.app.state.settings.rate_limits_enabled:
        return
    subject = f"org:{principal.organization.id}" if principal.organization else _caller(principal)
    await _enforce(request, subject, Limit(plan.name, plan.requests_per_minute, 60, plan.burst))


AuthenticationLimit = Depends(per_ip(AUTHENTICATION))
ValidationLimit = Depends(per_ip(VALIDATION))
LicenseOperationsLimit = Depends(per_caller_license_ops)
HeartbeatLimit = Depends(per_session_heartbeat)
PlatformLimit = Depends(per_organization_plan)
