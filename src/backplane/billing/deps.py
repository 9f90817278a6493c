"""The organization's plan in force, resolved once per request (FastAPI caches a dependency per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.auth.deps import Authenticated
from backplane.billing.plans import DEFAULT_PLAN, Plan
from backplane.billing.service import plan_of
from backplane.core.db import SessionDep


async def current_plan(request: Request, principal: Authenticated, session: SessionDep) -> Plan:
    """The rate limiter, upload limits and job limits of one request all read this one value."""
    if principal.organization is None:
        return DEFAULT_PLAN
    state = request.app.state
    return await plan_of(session, state.redis, state.settings, principal.organization.id)


PlanDep = Annotated[Plan, Depends(current_plan)]
