"""X-Request-ID on every response: the caller's own if it sent a sane one, else a new `req_…`."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backplane.core.logs import log_context

HEADER = "X-Request-ID"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_of(request: Request) -> str | None:
    # The scope outlives the middleware's context, so errors rendered by the outermost
    # ServerErrorMiddleware still find the id there.
    return getattr(request.state, "request_id", None) or _request_id.get()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _ACCEPTABLE.match(sent) else new_request_id()
        token = _request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            with log_context(request_id=request_id):  # the request's own: what it binds ends with it
                await self.app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)
