"""One request, sent with retries, by a sync or an async httpx client.

Each SDK operation is written once, as a generator that yields `Request`s (and `Sleep`s) and receives
the responses (`_operations.py`); `SyncTransport.run` and `AsyncTransport.run` drive the same
generator with `httpx.Client` or `httpx.AsyncClient`. That keeps `CoExAI` and `AsyncCoExAI` one surface
without a second copy of every method's logic (httpx has no retry policy for status codes, and no
library drives one generator both ways, hence this small module).

Retries: 429 (honouring `Retry-After`, except `QUOTA_EXCEEDED`, which a retry cannot fix), 5xx,
409 `IDEMPOTENCY_KEY_IN_USE` (the first attempt is still in flight) and network errors, with
exponential backoff and full jitter. A POST gets one `Idempotency-Key` for all its attempts, so a
retried creation is never done twice.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from coexai._version import __version__
from coexai.errors import APIConnectionError, CoExAIError, error_from_response, parse_retry_after

T = TypeVar("T")
FileTuple = tuple[str, bytes, str]

USER_AGENT = f"coexai-python/{__version__}"


@dataclass
class Request:
    method: str
    path: str  # relative to the base URL, or absolute (a pre-signed upload URL)
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    files: list[tuple[str, FileTuple]] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # overrides the client's (a long poll waits longer)
    authenticated: bool = True


@dataclass
class Sleep:
    seconds: float


Operation = Generator[Request | Sleep, Any, T]


@dataclass
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0  # a longer Retry-After is not waited out: the 429 is raised

    def delay(self, attempt: int, error: CoExAIError | None) -> float | None:
        """Seconds before retry number `attempt + 1`, or None when this error is not retried."""
        if attempt >= self.max_retries:
            return None
        if error is not None and not _retryable(error):
            return None
        if error is not None and error.status_code == 429:
            after = parse_retry_after(error.headers.get("retry-after"))
            if after is not None:
                return None if after > self.max_retry_after else after + random.uniform(0, 0.1)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def _retryable(error: CoExAIError) -> bool:
    if isinstance(error, APIConnectionError):
        return True
    status = error.status_code or 0
    if status == 429:
        return error.code != "QUOTA_EXCEEDED"
    if status == 409:
        return error.code == "IDEMPOTENCY_KEY_IN_USE"
    return status >= 500


def _prepare(request: Request, attempt_headers: Mapping[str, str]) -> dict[str, Any]:
    headers = {**attempt_headers, **request.headers}
    if request.method == "POST" and "Idempotency-Key" not in headers:
        request.headers["Idempotency-Key"] = headers["Idempotency-Key"] = str(uuid.uuid4())
    kwargs: dict[str, Any] = {"headers": headers, "params": request.params}
    if request.json is not None:
        kwargs["json"] = request.json
    if request.data is not None:
        kwargs["data"] = request.data
    if request.files is not None:
        kwargs["files"] = request.files
    if request.content is not None:
        kwargs["content"] = request.content
    if request.timeout is not None:
        kwargs["timeout"] = request.timeout
    return kwargs


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def _connection_error(exc: httpx.TransportError) -> APIConnectionError:
    return APIConnectionError(f"Could not reach the service: {exc!r}", code="CONNECTION_ERROR")


class _Base:
    def __init__(self, api_key: str | None, retry: RetryPolicy) -> None:
        self.api_key = api_key
        self.retry = retry

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if request.authenticated and self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


class SyncTransport(_Base):
    def __init__(self, client: httpx.Client, api_key: str | None, retry: RetryPolicy) -> None:
        super().__init__(api_key, retry)
        self.client = client

    def send(self, request: Request) -> httpx.Response:
        attempt = 0
        while True:
            kwargs = _prepare(request, self._headers(request))
            try:
                return _check(self.client.request(request.method, request.path, **kwargs))
            except httpx.TransportError as exc:
                error: CoExAIError = _connection_error(exc)
            except CoExAIError as exc:
                error = exc
            pause = self.retry.delay(attempt, error)
            if pause is None:
                raise error
            time.sleep(pause)
            attempt += 1

    def run(self, operation: Operation[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = operation.throw(error) if error is not None else operation.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    value = self.send(step)
            except CoExAIError as exc:
                error = exc


class AsyncTransport(_Base):
    def __init__(self, client: httpx.AsyncClient, api_key: str | None, retry: RetryPolicy) -> None:
        super().__init__(api_key, retry)
        self.client = client

    async def send(self, request: Request) -> httpx.Response:
        attempt = 0
        while True:
            kwargs = _prepare(request, self._headers(request))
            try:
                return _check(await self.client.request(request.method, request.path, **kwargs))
            except httpx.TransportError as exc:
                error: CoExAIError = _connection_error(exc)
            except CoExAIError as exc:
                error = exc
            pause = self.retry.delay(attempt, error)
            if pause is None:
                raise error
            await asyncio.sleep(pause)
            attempt += 1

    async def run(self, operation: Operation[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = operation.throw(error) if error is not None else operation.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    value = await self.send(step)
            except CoExAIError as exc:
                error = exc
