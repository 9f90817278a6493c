"""Typed errors. Every error the service answers becomes a `CoExAIError` (or a subclass by status) carrying
the platform error body's `code`, `message`, `details` and `request_id`.

The licensing surface (`/api/v1/`) answers `{"error", "detail"}` or `{"errors": {field: [msg]}}`; those
are mapped onto the same attributes (`code` from the status, `message` from `detail`, `details` from
`errors`), so one `except` clause handles both surfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class CoExAIError(Exception):
    """An error answered by the service, or raised by the SDK itself (then `status_code` is None)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "ERROR",
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id
        self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        status = f"{self.status_code} " if self.status_code is not None else ""
        return f"{status}{self.code}: {self.message}{where}"


class APIConnectionError(CoExAIError):
    """The service could not be reached (after the retries)."""


class BadRequestError(CoExAIError):
    """400."""


class AuthenticationError(CoExAIError):
    """401: a missing, invalid, expired or revoked key or token."""


class PaymentRequiredError(CoExAIError):
    """402."""


class PermissionDeniedError(CoExAIError):
    """403: the key's scopes or the caller's role do not allow it."""


class NotFoundError(CoExAIError):
    """404 (also what another organization's ids answer)."""


class ConflictError(CoExAIError):
    """409: e.g. a job not completed yet, an idempotency key in use, no seats available."""


class ValidationError(CoExAIError):
    """422 (`VALIDATION_ERROR`); `details` names the fields."""


class RateLimitError(CoExAIError):
    """429: `RATE_LIMIT_EXCEEDED` or `QUOTA_EXCEEDED`; `retry_after` in seconds when the service said."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class InternalServerError(CoExAIError):
    """5xx."""


class WaitTimeoutError(CoExAIError):
    """`wait_for_completion`: the job was not final within the timeout."""


class WebhookVerificationError(CoExAIError):
    """A webhook's signature, timestamp or body did not verify."""


_BY_STATUS: dict[int, type[CoExAIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds; an HTTP date is not sent by this service)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def error_from_response(response: httpx.Response) -> CoExAIError:
    """The typed error for a 4xx/5xx response, from either surface's error body."""
    status = response.status_code
    cls = _BY_STATUS.get(status, InternalServerError if status >= 500 else CoExAIError)
    code, message = f"HTTP_{status}", response.reason_phrase or "error"
    details: Any = {}
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # platform: {"error": {code, message, details, request_id}}
            code = str(error.get("code") or code)
            message = str(error.get("message") or message)
            details = error.get("details") or {}
            request_id = error.get("request_id") or request_id
        elif isinstance(error, str):  # licensing: {"error": "...", "detail": "..."}
            message = str(body.get("detail") or error)
            code = error.upper().replace(" ", "_")
        elif isinstance(body.get("errors"), dict):  # licensing validation: {"errors": {field: [msg]}}
            code, message, details = "VALIDATION_ERROR", "Invalid request data.", body["errors"]
    return cls(
        message,
        code=code,
        details=details if isinstance(details, dict) else {"value": details},
        request_id=request_id,
        status_code=status,
        headers=response.headers,
    )
