"""/docs and /redoc load everything they need from this service: no script, style, font or icon from
another host (a machine without internet access, or a strict Content Security Policy, would show a
blank page)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    # And whatever the pages' scripts are told to fetch (e.g. url: '/openapi.json').
    return parser.urls + re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)


@pytest.mark.parametrize("path", PAGES)
async def test_the_docs_pages_name_no_other_host(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    other_hosts = [url for url in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page.text) if "testserver" not in url]
    assert other_hosts == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_every_asset_the_docs_pages_reference_is_served_here(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    urls = _references(page.text)
    kinds = {url.rsplit(".", 1)[-1] for url in urls}
    assert "js" in kinds and "png" in kinds  # the UI's script and the favicon, at least
    if path == "/docs":
        assert "css" in kinds
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


async def test_the_docs_pages_allow_scripts_from_this_service_only(client: httpx.AsyncClient) -> None:
    for path in PAGES:
        policy = (await client.get(path)).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'"
        sources = directives["script-src"].split()
        assert sources[0] == "'self'"
        assert all(source.startswith("'sha256-") for source in sources[1:])
        assert "http" not in policy
