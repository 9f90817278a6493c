"""Error bodies of both surfaces, described once for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel


class LicensingError(BaseModel):
    error: str = Field(examples=["Not found"])
    detail: str = Field(examples=["The requested resource was not found."])


class LicensingValidationError(BaseModel):
    errors: dict[str, list[str]] = Field(
        examples=[
            {
                "email": ["Enter a valid email address."],
                "password": ["Password must be at least 8 characters."],
            }
        ]
    )


class LicensingBadRequest(RootModel[LicensingValidationError | LicensingError]):
    """A licensing 400 has one of two shapes. `{"errors": {field: [msg]}}` when the body was read but
    fields are missing or invalid (each field with its messages). `{"error", "detail"}` when the request
    is refused as a whole: a body that is not JSON (`Malformed JSON`), an invalid or expired token or
    link (`Invalid token`), a change the license or subscription does not allow, a Stripe webhook whose
    signature fails."""


class PlatformErrorBody(BaseModel):
    code: str = Field(examples=["NOT_FOUND"])
    message: str = Field(examples=["The requested resource was not found."])
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = Field(examples=["req_4f1c2a9e0b7d3c5a1e2f3a4b"])


class PlatformError(BaseModel):
    error: PlatformErrorBody


_PLATFORM_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "The request could not be processed."),
    401: (
        "UNAUTHORIZED",
        "Authentication credentials were not provided or are invalid.",
    ),
    403: ("FORBIDDEN", "This API key lacks the 'write' scope."),
    404: ("NOT_FOUND", "The requested resource was not found."),
    409: ("CONFLICT", "The request conflicts with the current state of the resource."),
    422: ("VALIDATION_ERROR", "The request body or parameters are invalid."),
    429: ("RATE_LIMIT_EXCEEDED", "API rate limit exceeded. Try again in 60 seconds."),
    502: ("BILLING_UNAVAILABLE", "The payment provider could not be reached. Retry later."),
    503: ("SERVICE_UNAVAILABLE", "A backing service is unavailable. Retry later."),
}


def platform_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in codes:
        code, message = _PLATFORM_EXAMPLES[status]
        example = {
            "error": {
                "code": code,
                "message": message,
                "details": {},
                "request_id": "req_4f1c2a9e0b7d3c5a1e2f3a4b",
            }
        }
        out[status] = {
            "model": PlatformError,
            "description": code,
            "content": {"application/json": {"example": example}},
        }
    return out


_LICENSING_400 = "Bad request: field errors `{errors}`, or the request refused as a whole `{error, detail}`"
_ORGANIZATION_HEADER = "x-organization-id"
_MODE_HEADER = "x-backplane-mode"


def licensing_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in codes:
        if status == 400:
            out[status] = {"model": LicensingBadRequest, "description": _LICENSING_400}
        else:
            out[status] = {
                "model": LicensingError,
                "description": _PLATFORM_EXAMPLES[status][0].replace("_", " ").capitalize(),
            }
    return out


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def install_openapi(app: Any) -> None:
    """Describe errors as each surface really answers them.

    FastAPI documents every body-taking route with a 422 `HTTPValidationError`; the licensing
    surface answers 400 (`LicensingBadRequest`: field errors, or a body that is not JSON) and the
    platform surface 422 in its error envelope. Three more answers every route of a kind can give are
    added here rather than on each route: a licensing route that reads a body can answer 400 (the
    body is not JSON); a route taking `X-Organization-ID` answers 404 for an organization the caller
    is not in, and one taking `X-Backplane-Mode` 400 for a mode it cannot act in; and errors are JSON
    even where the route's own answer is a page or a redirect.
    """
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (LicensingBadRequest, PlatformError):
            components.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
            for name, definition in components[model.__name__].pop("$defs", {}).items():
                components.setdefault(name, definition)
        for path, operations in schema.get("paths", {}).items():
            licensing = path.startswith("/api/")
            for operation in operations.values():
                _describe_errors(operation, licensing)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _describe_errors(operation: dict[str, Any], licensing: bool) -> None:
    responses = operation.setdefault("responses", {})
    error_body = "LicensingError" if licensing else "PlatformError"
    if "422" in responses:
        if licensing:
            responses.pop("422")
            responses["400"] = {"description": _LICENSING_400, "content": _ref("LicensingBadRequest")}
        else:
            responses["422"] = {"description": "VALIDATION_ERROR", "content": _ref("PlatformError")}
    elif licensing and "requestBody" in operation:
        responses.setdefault("400", {"description": _LICENSING_400, "content": _ref("LicensingBadRequest")})
    parameters = operation.get("parameters", [])
    headers = {p.get("name", "").lower() for p in parameters if p.get("in") == "header"}
    if _ORGANIZATION_HEADER in headers:
        responses.setdefault(
            "404", {"description": "Organization not found (X-Organization-ID)", "content": _ref(error_body)}
        )
    if _MODE_HEADER in headers:
        bad_request = ("LicensingBadRequest", _LICENSING_400) if licensing else (error_body, "BAD_REQUEST")
        responses.setdefault(
            "400",
            {
                "description": f"{bad_request[1]} (X-Backplane-Mode not `live` or `test`, or not the key's own mode)",
                "content": _ref(bad_request[0]),
            },
        )
    for status, response in responses.items():
        content = response.get("content")
        if not status.isdigit() or int(status) < 400 or not content or "application/json" in content:
            continue
        # FastAPI files an error's schema under the route's own media type (text/html for a page).
        response["content"] = {"application/json": next(iter(content.values()))}
