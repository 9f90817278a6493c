"""MAX_REQUEST_BODY_BYTES: a service-wide cap on request bodies, enforced before anything reads them.

A body whose Content-Length is over the cap is refused with 413 when the app first reads it, before
one byte is taken; a body without a Content-Length (chunked) is counted as it is read and cut off
the moment it crosses the cap. Routes that stream their body to storage under
their own limits (the plan's upload size) say so where they are declared, with `@streams_body(...)`.

Hand-written rather than FastAPI's own `max_body_size` (Starlette's RequestBodyLimitMiddleware):
that sets one limit per route, while POST /v1/jobs takes capped JSON and streamed multipart on the
same route, and it answers a refused Content-Length in plain text, outside each surface's error shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backplane.core.errors import PayloadTooLarge, render

_STREAMED = "__streamed_body__"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def streams_body(*media_types: str) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint that streams its body (of these media types; none given: any) under its own limits."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _STREAMED, frozenset(media_types))
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a chunked body crosses the cap (an HTTPException, so that FastAPI's
    own body reading lets it through instead of turning it into a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413)
        self.error = PayloadTooLarge(
            f"The request body is larger than the {max_bytes} bytes this endpoint accepts.",
            details={"max_bytes": max_bytes},
        )


def _streamed(scope: Scope) -> bool:
    """Whether the endpoint the request was routed to streams bodies of its media type."""
    media_types: frozenset[str] | None = getattr(scope.get("endpoint"), _STREAMED, None)
    if media_types is None:
        return False
    media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    return not media_types or media_type in media_types


class BodyLimitMiddleware:
    """Counts what the app reads of the body; the first read over the cap raises `BodyTooLarge`.

    The check runs when the body is first read, so the routed endpoint (`scope["endpoint"]`) is known and
    may be one that streams; FastAPI reads a JSON body before it runs any dependency, so those are
    refused before authentication or a database query. A body the app never reads costs nothing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        over = declared.isdigit() and int(declared) > self.max_bytes
        received = 0
        limited: bool | None = None  # decided at the first read, once the request is routed
        responding = False

        async def limited_receive() -> Message:
            nonlocal received, limited
            if limited is None:
                limited = not _streamed(scope)
            if not limited or responding:  # after the answer began: a disconnect listener, not a body reader
                return await receive()
            if over:
                raise BodyTooLarge(self.max_bytes)  # from Content-Length alone: not one byte read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal responding
            if message["type"] == "http.response.start":
                responding = True
            await send(message)

        await self.app(scope, limited_receive, watched_send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    async def on_too_large(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BodyTooLarge)
        return render(request, exc.error)

    app.add_exception_handler(BodyTooLarge, on_too_large)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
