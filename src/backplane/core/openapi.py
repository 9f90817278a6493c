"""Error bodies of both surfaces, described once for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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


def licensing_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in codes:
        if status == 400:
            out[status] = {
                "model": LicensingValidationError,
                "description": "Validation error",
            }
        else:
            out[status] = {
                "model": LicensingError,
                "description": _PLATFORM_EXAMPLES[status][0].title(),
            }
    return out
