"""Cross-cutting HTTP behaviour: request ids, routing errors, unexpected errors, OpenAPI."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from backplane.core.db import SessionDep
from tests.fixtures.assertions import assert_error


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
    assert register["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/LicensingBadRequest")
    login = spec["paths"]["/v1/auth/login"]["post"]["responses"]
    assert login["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/PlatformError")
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_openapi_documents_both_shapes_of_a_licensing_400(client: httpx.AsyncClient) -> None:
    """Field errors `{"errors"}` or a refusal as a whole `{"error", "detail"}` (a body that is not JSON,
    an invalid link, a change not allowed): every licensing 400 is documented as either."""
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["schemas"]["LicensingBadRequest"]["anyOf"] == [
        {"$ref": "#/components/schemas/LicensingValidationError"},
        {"$ref": "#/components/schemas/LicensingError"},
    ]
    for path, method in [
        ("/api/v1/auth/token/", "post"),
        ("/api/v1/auth/verify-email/", "get"),
        ("/api/v1/auth/reset-password/", "post"),
        ("/api/v1/licenses/{license_id}/", "patch"),
        ("/api/v1/subscriptions/update/", "post"),
        ("/api/v1/webhooks/stripe/", "post"),
    ]:
        bad_request = spec["paths"][path][method]["responses"]["400"]
        assert bad_request["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/LicensingBadRequest"}}
        }, path


async def test_openapi_documents_the_404_of_x_organization_id_and_json_errors_beside_a_page(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, method in [("/v1/users/me", "patch"), ("/v1/staff/actions", "get"), ("/v1/jobs", "get")]:
        not_found = spec["paths"][path][method]["responses"]["404"]
        assert not_found["content"]["application/json"]["schema"]["$ref"].endswith("/PlatformError"), path
    page = spec["paths"]["/api/v1/subscriptions/local-checkout/{session_id}/"]["get"]["responses"]
    assert list(page["200"]["content"]) == ["text/html"]
    assert page["404"]["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/LicensingError"}}}


async def test_a_json_body_that_is_not_utf8_is_malformed_json_in_each_surfaces_shape(
    client: httpx.AsyncClient,
) -> None:
    """Found by the fuzz run: FastAPI's own 400 "There was an error parsing the body", undocumented
    on the platform surface, where a body that is not JSON is a 422."""
    headers = {"Content-Type": "application/json"}
    platform = await client.post("/v1/auth/login", content=b"\xc2\x98\xf3", headers=headers)
    assert_error(platform, 422, "VALIDATION_ERROR", "The request body is not valid JSON: it is not UTF-8 text.")
    licensing = await client.post("/api/v1/auth/token/", content=b"\xc2\x98\xf3", headers=headers)
    assert licensing.status_code == 400
    assert licensing.json() == {
        "error": "Malformed JSON",
        "detail": "The request body is not valid JSON: it is not UTF-8 text.",
    }


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
