"""Cross-cutting HTTP behaviour: request ids, routing errors, unexpected errors, OpenAPI."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from backplane.core.db import SessionDep


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/")
    assert response.headers["X-Request-ID"].startswith("req_")
    assert len(response.headers["X-Request-ID"]) == len("req_") + 24


async def test_the_callers_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope", headers={"X-Request-ID": "trace-42.abc"})
    assert response.headers["X-Request-ID"] == "trace-42.abc"
    assert response.json()["error"]["request_id"] == "trace-42.abc"


async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/", headers={"X-Request-ID": "x" * 300})
    assert response.headers["X-Request-ID"].startswith("req_")


async def test_unknown_routes_answer_404_in_each_surfaces_shape(client: httpx.AsyncClient) -> None:
    licensing = await client.get("/api/v1/nothing-here/")
    assert licensing.status_code == 404
    assert licensing.json() == {"error": "Not found", "detail": "The requested resource was not found."}
    platform = await client.get("/v1/nothing-here")
    assert platform.status_code == 404
    assert platform.json() == {
        "error": {
            "code": "NOT_FOUND",
            "message": "The requested resource was not found.",
            "details": {},
            "request_id": platform.headers["X-Request-ID"],
        }
    }


async def test_wrong_method_is_405_in_each_surfaces_shape(client: httpx.AsyncClient) -> None:
    licensing = await client.delete("/api/v1/auth/token/")
    assert licensing.status_code == 405
    assert licensing.json() == {"error": "Method not allowed", "detail": "This method is not allowed on this resource."}
    platform = await client.put("/v1/auth/login")
    assert platform.status_code == 405
    assert platform.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in platform.headers["Allow"]


async def test_an_unexpected_error_is_a_clean_500_with_the_request_id(app: FastAPI) -> None:
    @app.get("/v1/_boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/api/v1/_boom/")
    async def licensing_boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        platform = await http.get("/v1/_boom", headers={"X-Request-ID": "req_fixed"})
        licensing = await http.get("/api/v1/_boom/")
    assert platform.status_code == 500
    assert platform.json() == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "An unexpected error occurred. Retry with backoff; quote the request id if it persists.",
            "details": {},
            "request_id": "req_fixed",
        }
    }
    assert platform.headers["X-Request-ID"] == "req_fixed"
    assert "secret internals" not in platform.text
    assert licensing.status_code == 500
    assert licensing.json()["error"] == "Server error"
    assert licensing.headers["X-Request-ID"].startswith("req_")


async def test_openapi_documents_both_surfaces(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path in ("/api/v1/auth/register/", "/api/v1/auth/token/", "/v1/auth/login", "/v1/api-keys", "/v1/health"):
        assert path in spec["paths"], path
    register = spec["paths"]["/api/v1/auth/register/"]["post"]
    assert register["summary"] and register["tags"] == ["Licensing: authentication"]
    assert "409" in register["responses"]
    keys = spec["paths"]["/v1/api-keys"]["post"]
    assert keys["security"] == [{"bearer": []}]
    assert {tag["name"] for tag in spec["tags"]} >= {"Organizations", "API keys", "Health"}
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_openapi_describes_validation_errors_in_each_surfaces_shape(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    register = spec["paths"]["/api/v1/auth/register/"]["post"]["responses"]
    assert "422" not in register
    assert register["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/LicensingValidationError")
    login = spec["paths"]["/v1/auth/login"]["post"]["responses"]
    assert login["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/PlatformError")
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_text_postgresql_cannot_store_is_a_validation_error_not_a_500(app: FastAPI) -> None:
    """The safety net behind the field types: U+0000 reaching an INSERT is still a 4xx."""

    @app.post("/v1/_nul")
    async def nul(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post("/v1/_nul")
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {
        "fields": {"non_field_errors": ["Text must not contain NUL (\\u0000) characters."]}
    }
