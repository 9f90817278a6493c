"""Each route's declared requirement, found in its dependencies and shown in its OpenAPI entry."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from backplane.access.requirements import Requirement

EXTENSION = "x-access"


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every API route as served, with the dependencies of the routers that include it."""
    return [context for context in iter_route_contexts(app.routes) if isinstance(context.original_route, APIRoute)]


def requirements_of(route: APIRoute | RouteContext) -> list[Requirement]:
    """Every distinct `Requirement` among the route's dependencies, however deep."""
    found: list[Requirement] = []

    def walk(dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            if isinstance(sub.call, Requirement) and all(sub.call is not seen for seen in found):
                found.append(sub.call)
            walk(sub)

    walk(route.dependant)
    return found


def install_access_openapi(app: FastAPI) -> None:
    """Add `x-access` (what the caller needs) to every operation whose route declares exactly one
    requirement; an operation without it is a route that declares none or several (a test fails)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        paths = schema.get("paths", {})
        for route in api_routes(app):
            if not route.include_in_schema:
                continue
            requirements = requirements_of(route)
            if len(requirements) != 1:
                continue
            for method in route.methods or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operation[EXTENSION] = requirements[0].describe()
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
