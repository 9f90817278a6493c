"""Every route declares exactly one access requirement, and shows it in its OpenAPI entry."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import RouteContext

from backplane.access.openapi import EXTENSION, api_routes, requirements_of
from backplane.access.requirements import Public, Requirement
from backplane.app import create_app
from backplane.core.config import Settings


def _app(settings: Settings) -> FastAPI:
    return create_app(settings)


def _routes(app: FastAPI) -> list[RouteContext]:
    return api_routes(app)


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (path, method, operation)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_route_declares_exactly_one_requirement(settings: Settings) -> None:
    app = _app(settings)
    counts = {f"{sorted(r.methods)} {r.path}": len(requirements_of(r)) for r in _routes(app)}
    assert len(counts) > 70
    assert {route: n for route, n in counts.items() if n != 1} == {}


def test_every_operation_of_the_openapi_document_shows_its_requirement(settings: Settings) -> None:
    problems: dict[str, str] = {}
    operations = _operations(_app(settings))
    assert len(operations) > 70
    for path, method, operation in operations:
        name = f"{method.upper()} {path}"
        access = operation.get(EXTENSION)
        if not isinstance(access, dict):
            problems[name] = "declares no requirement"
        elif access["public"]:
            if not access.get("why"):
                problems[name] = "public without saying why"
            elif "security" in operation:
                problems[name] = "public but lists a security requirement"
        elif operation.get("security") != [{"bearer": []}] or access.get("mode") not in ("live", "live or test"):
            problems[name] = f"protected but documented as {operation.get('security')}, {access}"
    assert problems == {}


def test_a_route_added_without_a_requirement_is_caught(settings: Settings) -> None:
    app = _app(settings)

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    @app.get("/v1/twice", dependencies=[Public("one"), Public("two")])
    async def twice() -> dict[str, str]:
        return {}

    route = {r.path: r for r in _routes(app)}
    assert requirements_of(route["/v1/forgotten"]) == []
    assert len(requirements_of(route["/v1/twice"])) == 2
    paths = app.openapi()["paths"]
    assert EXTENSION not in paths["/v1/forgotten"]["get"]
    assert EXTENSION not in paths["/v1/twice"]["get"]


def test_requirements_describe_what_they_need() -> None:
    described = [cls.__name__ for cls in Requirement.__subclasses__()]
    assert "PublicAccess" in described and "Require" in described
