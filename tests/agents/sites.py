"""Stand-ins for the outside world the agents reach: a blog, a small business's site, a chat completions API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.agents import samples


def blog_app() -> Starlette:
    async def post(request: Request) -> Response:
        return HTMLResponse(samples.blog_html())

    async def moved(request: Request) -> Response:
        return RedirectResponse("/blog/composting", status_code=301)

    async def missing(request: Request) -> Response:
        return HTMLResponse("<h1>Not found</h1>", status_code=404)

    async def plain(request: Request) -> Response:
        return PlainTextResponse(" ".join(samples.BLOG_PARAGRAPHS))

    return Starlette(
        routes=[
            Route("/blog/composting", post),
            Route("/old-post", moved),
            Route("/missing", missing),
            Route("/notes.txt", plain),
        ]
    )


class SiteState:
    """The business site's current HTML: tests change it between audits."""

    def __init__(self, html: str) -> None:
        self.html = html


def business_app(state: SiteState) -> Starlette:
    async def home(request: Request) -> Response:
        return HTMLResponse(state.html)

    async def error(request: Request) -> Response:
        return HTMLResponse("<h1>oops</h1>", status_code=500)

    return Starlette(routes=[Route("/", home), Route("/broken", error)])


class ChatServer:
    """An OpenAI-compatible `POST /v1/chat/completions`: `answer(system, user)` gives the message content
    (None: answer 500). Every request's body and Authorization header are kept for assertions."""

    def __init__(self, answer: Callable[[str, str], str | None]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append({"body": body, "authorization": request.headers.get("authorization")})
            messages = {m["role"]: m["content"] for m in body["messages"]}
            content = self.answer(messages["system"], messages["user"])
            if content is None:
                return JSONResponse({"error": {"message": "model overloaded"}}, status_code=500)
            return JSONResponse(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                }
            )

        return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def json_answer(value: Any) -> str:
    return "```json\n" + json.dumps(value) + "\n```"
