"""The seat routes' success path without FastAPI's per-request machinery (SEAT_FAST_PATH, on by default).

Acquire, heartbeat and release are the hot path of every licensed machine, and once the caches are
warm each is one Redis script call (`seats.py`); what FastAPI does around that call (walking the
included routers, solving the route's dependencies, validating the returned model again, building
the response) cost as much as the call itself. `SeatFastPath`, the innermost of the app's
middleware (every other one still wraps it: metrics, request id, security and rate-limit headers,
the body limit), answers those three routes directly:

- a request is recognized by its method and path (the routes' own templates, with the session id
  in canonical form), and the scope gets what the router would have put there (`route`, `endpoint`,
  `path_params`), so the metrics' route label and the body limit see the same route;
- the request is taken as FastAPI would take it: the acquire's body read (through the middleware's
  `receive`, so MAX_REQUEST_BODY_BYTES holds) and validated as `AcquireRequest`, the caller admitted
  by the route's own dependency object (`admission.SEAT_WRITER`);
- the same `seats.acquire` / `heartbeat` / `release` runs; an error it raises is rendered by the
  app's own exception handlers, through the same Starlette `ExceptionMiddleware` the routes run under;
- the answer is serialized from the route's response model, as FastAPI's `dump_json` path does.

Anything unusual before the first side effect (a session id in another spelling, a body that is not
a valid JSON `AcquireRequest`, another content type, a root path) goes to the FastAPI route
unchanged, its body replayed, so that each input error keeps its one implementation there. The
routes stay declared as they were (routing of everything else, the OpenAPI document, tracing); only
who builds the success response changes. Hand-written: no library answers "this FastAPI route,
without FastAPI".
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backplane.access.admission import SEAT_WRITER
from backplane.core.client_ip import client_ip
from backplane.licenses import endpoints, seats
from backplane.licenses.schemas import AcquireRequest, ReleaseResponse, SessionRead

JSON = "application/json"
_session_json = TypeAdapter(SessionRead)
_release_json = TypeAdapter(ReleaseResponse)


_SESSION_ID_LENGTH = 36
_FALLBACK = "backplane.seat_fast_path.fallback"  # scope key: the `receive` the FastAPI route is to read


def _session_id(raw: str) -> uuid.UUID | None:
    """The path's session id when it is in the canonical form (what acquire answers); any other
    spelling of a UUID, or no UUID, is left to FastAPI's own validation."""
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        return None
    return parsed if str(parsed) == raw else None


async def _respond(adapter: TypeAdapter[Any], value: BaseModel, scope: Scope, receive: Receive, send: Send) -> None:
    # What FastAPI's route does for a response model and the default response class (`dump_json`).
    await Response(adapter.dump_json(value, by_alias=True), media_type=JSON)(scope, receive, send)


class _SessionRoute:
    """A route `<prefix>{session_id}<suffix>`, matched as its template says (any 36 characters as the id)."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.methods = frozenset(route.methods or ())
        self.prefix, _, self.suffix = route.path.partition("{session_id}")
        self.length = len(self.prefix) + _SESSION_ID_LENGTH + len(self.suffix)

    def match(self, method: str, path: str) -> str | None:
        matched = len(path) == self.length and path.startswith(self.prefix) and path.endswith(self.suffix)
        if not matched or method not in self.methods:
            return None
        return path[len(self.prefix) : len(self.prefix) + _SESSION_ID_LENGTH]


class SeatFastPath:
    """ASGI middleware: the seat routes' success path (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        routes = {route.endpoint: route for route in endpoints.seats_router.routes if isinstance(route, APIRoute)}
        self.acquire = routes[endpoints.acquire_seat]
        self.sessions = [_SessionRoute(routes[endpoints.heartbeat]), _SessionRoute(routes[endpoints.release_seat])]
        self.endpoints = frozenset({endpoints.acquire_seat, endpoints.heartbeat, endpoints.release_seat})
        self._guarded: ASGIApp | None = None  # built at the first request, once the app's handlers are all known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        route: APIRoute | None = None
        path_params: dict[str, str] = {}
        if method == "POST" and path == self.acquire.path:
            route = self.acquire
        else:
            for candidate in self.sessions:
                raw = candidate.match(method, path)
                if raw is not None:
                    route, path_params = candidate.route, {"session_id": raw}
                    break
        if route is None:
            await self.app(scope, receive, send)
            return
        # What the router puts in the scope for the route: the metrics' label, the body limit's endpoint.
        scope.update(route=route, endpoint=route.endpoint, path_params=path_params)
        scope[_FALLBACK] = None
        await self._errors_handled(scope["app"])(scope, receive, send)
        fallback: Receive | None = scope.pop(_FALLBACK)
        if fallback is not None:
            await self.app(scope, fallback, send)

    def _errors_handled(self, app: FastAPI) -> ASGIApp:
        """The fast path under the same exception handling as every route: Starlette's
        `ExceptionMiddleware` with the app's handlers, as `FastAPI.build_middleware_stack` makes it."""
        if self._guarded is None:
            handlers = {key: value for key, value in app.exception_handlers.items() if key not in (500, Exception)}
            self._guarded = ExceptionMiddleware(self._dispatch, handlers=handlers, debug=app.debug)
        return self._guarded

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["endpoint"] is endpoints.acquire_seat:
            await self._acquire(scope, receive, send)
            return
        session_id = _session_id(scope["path_params"]["session_id"])
        if session_id is None:
            scope[_FALLBACK] = receive
            return
        admission = await SEAT_WRITER(Request(scope, receive))
        if scope["endpoint"] is endpoints.heartbeat:
            await _respond(_session_json, await seats.heartbeat(admission, session_id), scope, receive, send)
        else:
            await _respond(_release_json, await seats.release(admission, session_id), scope, receive, send)

    async def _acquire(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _content_type(scope) != JSON:
            scope[_FALLBACK] = receive
            return
        messages, body = await _read_body(receive)
        replay = _replaying(messages, receive)
        data: AcquireRequest | None = None
        if body is not None:  # None: the client went away mid-body, which FastAPI's route answers
            try:
                data = AcquireRequest.model_validate(json.loads(body))  # as FastAPI: json.loads, then the model
            except (ValueError, RecursionError):  # not JSON, too deeply nested, or not an AcquireRequest
                data = None
        if data is None:
            scope[_FALLBACK] = replay
            return
        request = Request(scope, replay)
        admission = await SEAT_WRITER(request)
        ip = client_ip(request, request.app.state.trusted_proxies)
        await _respond(_session_json, await seats.acquire(admission, data, ip), scope, replay, send)


def _content_type(scope: Scope) -> str:
    """The request's media type, lower case, without parameters ('' when none is sent)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the body as received (for a replay), and the body (None: disconnected)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives `messages` again, then whatever comes next (a disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
