"""`AgentContext.fetch`: the size cap applies while the page streams in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
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
