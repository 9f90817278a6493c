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


# -- the README's agent catalog ---------------------------------------------------------------------

_EXAMPLE = re.compile(r"^- `(?P<name>[a-z]+_[a-z_]+)`: .*\n  ```json\n(?P<body>(?:  .*\n)+?)  ```$", re.MULTILINE)
_USE_CASE_FIELD = {"jordan": "action", "sam": "action", "taylor": "extraction_type"}


def _readme_examples() -> dict[str, object]:
    import json
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    return {m["name"]: json.loads(m["body"]) for m in _EXAMPLE.finditer(readme)}


def test_the_readme_lists_the_openapi_example_of_every_use_case() -> None:
    from backplane.agents.examples import USE_CASES

    assert _readme_examples() == {name: body for name, (_, body) in USE_CASES.items()}


def test_every_use_case_of_jordan_sam_and_taylor_has_an_example_its_agent_accepts() -> None:
    from typing import get_args

    from backplane.agents.base import InputFile
    from backplane.agents.catalog import product_agents
    from backplane.agents.examples import USE_CASES

    agents = {agent.id: agent for agent in product_agents()}
    covered: dict[str, set[str]] = {agent_id: set() for agent_id in _USE_CASE_FIELD}
    for name, (_, body) in USE_CASES.items():
        agent = agents[body["agent_id"]]
        input_data = agent.input_model.model_validate(body.get("input_data", {}))
        config = agent.config_model.model_validate(body.get("config", {}))
        kind = "pdf" if "pdf" in agent.file_types else next(iter(agent.file_types), "")
        files = [InputFile(file_id, "example", kind, 1024) for file_id in body.get("file_ids", [])]
        assert agent.check_input(input_data, config, files) == {}, name
        if agent.id in covered:
            covered[agent.id].add(getattr(input_data, _USE_CASE_FIELD[agent.id]))
    for agent_id, field in _USE_CASE_FIELD.items():
        annotation = agents[agent_id].input_model.model_fields[field].annotation
        options = [get_args(a) or (a,) for a in get_args(annotation)]  # a Literal, or Literal | None
        use_cases = {v for values in options for v in values if isinstance(v, str)} - {"text"}
        assert covered[agent_id] == use_cases, agent_id  # taylor's "text" is another name for "ocr"
