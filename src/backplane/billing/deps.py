"""The organization's plan in force, resolved once per request (FastAPI caches a dependency per request),
and the platform surface's rate limit, which is the plan's."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.access.authenticate import get_principal
from backplane.access.principal import Principal
from backplane.billing.plans import DEFAULT_PLAN, Plan
from backplane.billing.service import plan_of
from backplane.core.db import SessionDep
from backplane.core.ratelimit import Limit, enforce

CallerDep = Annotated[Principal, Depends(get_principal)]


async def current_plan(request: Request, principal: CallerDep, session: SessionDep) -> Plan:
    """The rate limiter, upload limits and job limits of one request all read this one value."""
    if principal.organization is None:
        return DEFAULT_PLAN
    state = request.app.state
    return await plan_of(session, state.redis, state.settings, principal.organization.id)


PlanDep = Annotated[Plan, Depends(current_plan)]


async def per_organization_plan(request: Request, principal: CallerDep, plan: PlanDep) -> None:
    """Platform tier by the organization's plan in force (resolved once per request, cached in Redis)."""
    if not request.app.state.settings.rate_limits_enabled:
        return
    subject = f"org:{principal.organization.id}" if principal.organization else principal.caller_id
    await enforce(request, subject, Limit(plan.name, plan.requests_per_minute, 60, plan.burst))


PlatformLimit = Depends(per_organization_plan)
