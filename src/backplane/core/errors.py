"""Domain errors, and the two renderers that give each API surface its own error shape.

Services raise `AppError` subclasses and know nothing of HTTP bodies. The handlers below pick the
surface from the path: `/api/...` is the licensing surface (`{"error", "detail"}`, field errors
`{"errors": {field: [msg]}}` with 400), everything else the platform surface
(`{"error": {"code", "message", "details", "request_id"}}`, field errors 422 VALIDATION_ERROR).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import redis.exceptions
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backplane.core import metrics
from backplane.core.request_id import request_id_of

logger = logging.getLogger(__name__)

LICENSING_PREFIX = "/api/"
NON_FIELD = "non_field_errors"


class AppError(Exception):
    status_code = 400
    code = "BAD_REQUEST"
    title = "Bad request"
    default_message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = dict(details or {})
        self.headers = dict(headers or {})
        super().__init__(self.message)


class NotFound(AppError):
    status_code, code, title = 404, "NOT_FOUND", "Not found"
    default_message = "The requested resource was not found."


class Unauthorized(AppError):
    status_code, code, title = 401, "UNAUTHORIZED", "Unauthorized"
    default_message = "Authentication credentials were not provided or are invalid."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(AppError):
    status_code, code, title = 403, "FORBIDDEN", "Forbidden"
    default_message = "You do not have permission to perform this action."


class Conflict(AppError):
    status_code, code, title = 409, "CONFLICT", "Conflict"
    default_message = "The request conflicts with the current state of the resource."


class MethodNotAllowed(AppError):
    status_code, code, title = 405, "METHOD_NOT_ALLOWED", "Method not allowed"
    default_message = "This method is not allowed on this resource."


class PayloadTooLarge(AppError):
    status_code, code, title = 413, "PAYLOAD_TOO_LARGE", "Payload too large"


class ServiceUnavailable(AppError):
    status_code, code, title = 503, "SERVICE_UNAVAILABLE", "Service unavailable"
    default_message = "A backing service is unavailable. Retry later."


class InternalError(AppError):
    status_code, code, title = 500, "INTERNAL_ERROR", "Server error"
    default_message = "An unexpected error occurred. Retry with backoff; quote the request id if it persists."


class InvalidInput(AppError):
    """Field-level validation failures: `fields` maps a field name to its messages."""

    status_code, code, title = 422, "VALIDATION_ERROR", "Validation error"
    default_message = "The request body or parameters are invalid."

    def __init__(self, fields: Mapping[str, Sequence[str]], message: str | None = None) -> None:
        super().__init__(message, details={"fields": {k: list(v) for k, v in fields.items()}})
        self.fields = {k: list(v) for k, v in fields.items()}


class MalformedBody(AppError):
    status_code, code, title = 422, "VALIDATION_ERROR", "Malformed JSON"
    default_message = "The request body is not valid JSON."


_STATUS_ERRORS: dict[int, type[AppError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    401: Unauthorized,
    403: Forbidden,
    409: Conflict,
    413: PayloadTooLarge,
    503: ServiceUnavailable,
}

# Exceptions that mean "PostgreSQL or Redis is unreachable", answered with 503, not 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


_UNSTORABLE_TEXT = {"22021", "22P05"}  # character_not_in_repertoire, untranslatable_character


# What FastAPI raises (400, from the original error) for a body it cannot read: JSON that is not
# UTF-8 text, or a form it cannot parse. Answered like malformed JSON, in the surface's shape.
_FASTAPI_UNPARSABLE_BODY = "There was an error parsing the body"


def _unparsable_body(cause: BaseException | None) -> MalformedBody:
    if isinstance(cause, UnicodeDecodeError):
        return MalformedBody("The request body is not valid JSON: it is not UTF-8 text.")
    return MalformedBody("The request body could not be parsed.")


def is_licensing(request: Request) -> bool:
    return request.url.path.startswith(LICENSING_PREFIX)


def render(request: Request, error: AppError) -> JSONResponse:
    headers = dict(error.headers)
    if is_licensing(request):
        if isinstance(error, InvalidInput):
            return JSONResponse({"errors": error.fields}, status_code=400, headers=headers)
        status = 400 if isinstance(error, MalformedBody) else error.status_code
        body: dict[str, Any] = {"error": error.title, "detail": error.message}
        return JSONResponse(body, status_code=status, headers=headers)
    payload = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": request_id_of(request),
        }
    }
    return JSONResponse(payload, status_code=error.status_code, headers=headers)


def _field_name(loc: Sequence[str | int], *, request_level: bool = True) -> str:
    parts = list(loc)
    if request_level and parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or NON_FIELD


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "missing":
        return "This field is required."
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def validation_error(exc: RequestValidationError) -> AppError:
    errors = exc.errors()
    for err in errors:
        if err["type"] == "json_invalid":
            reason = err.get("ctx", {}).get("error", "invalid JSON")
            return MalformedBody(f"The request body is not valid JSON: {reason}.")
    if any(err["loc"] and err["loc"][0] == "path" for err in errors):
        return NotFound()  # a malformed id names nothing, exactly like an unknown one
    return InvalidInput(field_errors(errors))


def field_errors(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> dict[str, list[str]]:
    """pydantic's errors as the platform's `fields` (`input_data.url: [...]`), under `prefix` if given."""
    fields: dict[str, list[str]] = {}
    for err in errors:
        name = _field_name(err["loc"], request_level=not prefix)  # a nested model's field may be "query"
        if prefix:
            name = prefix if name == NON_FIELD else f"{prefix}.{name}"
        fields.setdefault(name, []).append(_message(err))
    return fields


def install_error_handlers(app: FastAPI) -> None:
    async def on_app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return render(request, validation_error(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _FASTAPI_UNPARSABLE_BODY:
            return render(request, _unparsable_body(exc.__cause__))
        cls = _STATUS_ERRORS.get(exc.status_code, AppError)
        error = cls(exc.detail if isinstance(exc.detail, str) and cls is AppError else None)
        if cls is AppError:
            error.status_code = exc.status_code
        error.headers.update(exc.headers or {})
        return render(request, error)

    async def on_dbapi(request: Request, exc: Exception) -> JSONResponse:
        # Text PostgreSQL cannot store (e.g. U+0000) that a field type did not catch first.
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in _UNSTORABLE_TEXT:
            return render(request, InvalidInput({NON_FIELD: ["Text must not contain NUL (\\u0000) characters."]}))
        return await on_unexpected(request, exc)

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("backing service unavailable: %s: %s", type(exc).__name__, exc)
        if isinstance(exc, redis.exceptions.RedisError):
            metrics.REDIS_ERRORS.inc()
        return render(request, ServiceUnavailable(headers={"Retry-After": "5"}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        response = render(request, InternalError())
        response.headers["X-Request-ID"] = request_id_of(request) or ""
        return response

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for exc_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(exc_type, on_unavailable)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, on_dbapi)
    app.add_exception_handler(Exception, on_unexpected)
