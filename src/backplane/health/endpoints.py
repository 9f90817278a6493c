"""Liveness and readiness on both surfaces."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from backplane import __version__
from backplane.access.requirements import Public
from backplane.core import metrics as metrics_
from backplane.core.errors import ServiceUnavailable, render

CHECK_TIMEOUT_SECONDS = 2.0

licensing = APIRouter(prefix="/api/v1/health", tags=["Health"])
platform = APIRouter(prefix="/v1", tags=["Health"])
# Off both API surfaces and out of the OpenAPI document; only on the API port when METRICS_PORT is unset.
metrics = APIRouter(include_in_schema=False)


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]


async def _check(coro: Any) -> str:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT_SECONDS)
    except Exception:
        return "unavailable"
    return "ok"


async def _ping_database(request: Request) -> None:
    async with request.app.state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def readiness(request: Request) -> dict[str, str]:
    database, redis = await asyncio.gather(_check(_ping_database(request)), _check(request.app.state.redis.ping()))
    return {"database": database, "redis": redis}


async def _ready_response(request: Request) -> JSONResponse:
    checks = await readiness(request)
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        error = ServiceUnavailable(f"Unavailable: {', '.join(down)}.", details={"checks": checks})
        response = render(request, error)
        return response
    return JSONResponse({"status": "ready", "checks": checks})


@licensing.get(
    "/", response_model=Health, summary="Liveness", dependencies=[Public("load balancers and uptime checks")]
)
async def licensing_health() -> Health:
    return Health(status="ok", version=__version__)


@licensing.get(
    "/ready/",
    response_model=Readiness,
    summary="Readiness: PostgreSQL and Redis reachable",
    responses={503: {"description": "A dependency is down; the body says which."}},
    dependencies=[Public("load balancers and orchestrators")],
)
async def licensing_ready(request: Request) -> JSONResponse:
    return await _ready_response(request)


@platform.get(
    "/health",
    response_model=Readiness,
    summary="Health: PostgreSQL and Redis reachable",
    responses={503: {"description": "A dependency is down; `error.details.checks` says which."}},
    dependencies=[Public("load balancers and uptime checks")],
)
async def platform_health(request: Request) -> JSONResponse:
    return await _ready_response(request)


@metrics.get(
    "/metrics",
    dependencies=[
        Public(
            "Prometheus scrapes: operational aggregates by route template, agent and plan, naming no "
            "organization, user or key; set METRICS_PORT to take it off the API port"
        )
    ],
)
async def prometheus_metrics() -> Response:
    return Response(metrics_.exposition(), media_type=metrics_.CONTENT_TYPE)
