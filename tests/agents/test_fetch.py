"""`AgentContext.fetch`: the size cap applies while the page streams in."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from backplane.agents.base import AgentInputError
from tests.agents.conftest import MakeContext
from tests.fixtures.http_server import serve

CHUNK = b"x" * 65536


async def test_an_endless_page_is_cut_off_at_the_cap(make_ctx: MakeContext) -> None:
    async def endless(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100_000):  # 6.5 GB: read whole before the check, this would exhaust the test
                yield CHUNK

        return StreamingResponse(body(), media_type="text/html")

    app = Starlette(routes=[Route("/", endless)])
    with serve(app, name="endless-page") as site, pytest.raises(AgentInputError, match=r"larger than 1048576 bytes"):
        await make_ctx().fetch(f"{site.url}/", max_bytes=1024 * 1024)


async def test_pages_are_asked_for_uncompressed(make_ctx: MakeContext) -> None:
    # A compressed body is decoded chunk by chunk after the cap is checked on the wire: a 1 MB gzip chunk
    # can expand to 1 GB in one step. So fetches ask for identity encoding only.
    seen: list[str | None] = []

    async def page(request: Request) -> Response:
        seen.append(request.headers.get("accept-encoding"))
        return HTMLResponse("<html><body><p>Plain page.</p></body></html>")

    app = Starlette(routes=[Route("/", page)])
    with serve(app, name="identity-page") as site:
        fetched = await make_ctx().fetch(f"{site.url}/")
    assert fetched.text == "<html><body><p>Plain page.</p></body></html>"
    assert seen == ["identity"]


async def test_a_page_sent_compressed_anyway_is_refused(make_ctx: MakeContext) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MB of zeros in ~64 KB

    async def page(request: Request) -> Response:
        return Response(bomb, media_type="text/html", headers={"Content-Encoding": "gzip"})

    app = Starlette(routes=[Route("/", page)])
    with serve(app, name="gzip-page") as site, pytest.raises(AgentInputError) as refused:
        await make_ctx().fetch(f"{site.url}/", max_bytes=1024 * 1024)
    assert str(refused.value) == (
        f"The page at {site.url}/ was sent compressed (gzip) though it was asked for uncompressed; it is refused."
    )
