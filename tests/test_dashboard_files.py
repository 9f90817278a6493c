"""`/dashboard/`: the built dashboard served with an SPA fallback, cache headers per file, a strict CSP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from backplane.core.config import REPOSITORY_DIR, Settings

INDEX = (
    b'<!doctype html><html><head><script type="module" src="/dashboard/assets/index-3f2a9c.js"></script></head></html>'
)
SCRIPT = b"console.log('dashboard');"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.fixture
def built(settings: Settings, tmp_path: Path) -> Path:
    """A fake build: index.html, one hashed asset, one unhashed file; a secret beside the folder."""
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-3f2a9c.js").write_bytes(SCRIPT)
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    settings.dashboard_dir = dist
    return dist


def test_the_default_folder_is_the_repository_s_dashboard_dist() -> None:
    assert Settings().dashboard_dir == REPOSITORY_DIR / "dashboard" / "dist"
    assert (REPOSITORY_DIR / "pyproject.toml").is_file()


async def test_the_index_is_served_revalidated_with_a_strict_csp(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/")

    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"


async def test_any_other_page_gets_the_index(built: Path, client: httpx.AsyncClient) -> None:
    for path in ("/dashboard/keys", "/dashboard/licenses/5f1c/sessions", "/dashboard/index"):
        response = await client.get(path)

        assert response.status_code == 200, path
        assert response.content == INDEX
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["content-security-policy"] == CSP


async def test_hashed_assets_are_cached_for_a_year(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/assets/index-3f2a9c.js")

    assert response.status_code == 200
    assert response.content == SCRIPT
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-security-policy"] == CSP
    head = await client.head("/dashboard/assets/index-3f2a9c.js")
    assert head.status_code == 200 and head.content == b""


async def test_an_unhashed_file_is_served_revalidated(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/favicon.svg")

    assert response.status_code == 200 and response.text == "<svg/>"
    assert response.headers["cache-control"] == "no-cache"


async def test_a_missing_asset_is_a_404_not_the_page(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/assets/index-old.js")

    assert response.status_code == 404
    assert response.text == "Not found.\n"
    assert response.headers["cache-control"] == "no-store"


async def test_nothing_outside_the_folder_is_served(built: Path, raw_client: httpx.AsyncClient) -> None:
    for path in (
        "/dashboard/../secret.txt",
        "/dashboard/%2e%2e/secret.txt",
        "/dashboard/assets/%2e%2e/%2e%2e/secret.txt",
        "/dashboard/..%2fsecret.txt",
        "/dashboard/%00",
        "/dashboard/" + "a" * 5000,
    ):
        response = await raw_client.get(path)

        assert b"not for the web" not in response.content, path
        assert response.status_code in (200, 404), (path, response.text)  # the page (the fallback), or a missing asset
        if response.status_code == 200:
            assert response.content == INDEX


async def test_a_symlink_out_of_the_folder_is_not_followed(built: Path, client: httpx.AsyncClient) -> None:
    (built / "leak.txt").symlink_to(built.parent / "secret.txt")

    response = await client.get("/dashboard/leak.txt")

    assert response.status_code == 200 and response.content == INDEX


async def test_dashboard_without_the_slash_redirects(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard")

    assert response.status_code == 308
    assert response.headers["location"] == "/dashboard/"


async def test_an_unbuilt_dashboard_answers_503_saying_what_to_run(
    settings: Settings, tmp_path: Path, raw_client: httpx.AsyncClient
) -> None:
    settings.dashboard_dir = tmp_path / "nowhere"

    for path in ("/dashboard/", "/dashboard/keys", "/dashboard/assets/index.js"):
        response = await raw_client.get(path)
        assert response.status_code == 503, path
        assert response.headers["content-type"].startswith("text/plain")
        assert "make install" in response.text
        assert str(tmp_path) not in response.text  # no server path in the answer
    (tmp_path / "empty").mkdir()
    settings.dashboard_dir = tmp_path / "empty"  # a folder without index.html (a failed build)
    assert (await raw_client.get("/dashboard/")).status_code == 503


async def test_the_dashboard_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert not [path for path in paths if path.startswith("/dashboard")]


async def test_other_methods_are_refused(built: Path, client: httpx.AsyncClient) -> None:
    response = await client.post("/dashboard/keys")

    assert response.status_code == 405
