"""Pre-signed uploads: signed, expiring, single-use URLs; confirm; cleanup of unconfirmed uploads."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.files.tasks import cleanup_pending_task
from backplane.workers.settings import shutdown, startup
from tests.files import samples
from tests.fixtures.assertions import assert_error
from tests.fixtures.auth import Account, Api

INVALID_URL = "This upload URL is invalid or has expired. Request a new one with POST /v1/files/upload-url."


async def _upload_url(client: httpx.AsyncClient, account: Account, content: bytes, **overrides: Any) -> dict[str, Any]:
    body = {"filename": "scan.pdf", "content_type": "application/pdf", "size_bytes": len(content), **overrides}
    response = await client.post("/v1/files/upload-url", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_the_guides_three_steps(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    assert created["file_id"].startswith("file_") and created["upload_url"].startswith("http://testserver/v1/files/")
    pending = (await client.get(f"/v1/files/{created['file_id']}", headers=account.headers)).json()
    assert pending["status"] == "pending"
    assert (await client.get(f"/v1/files/{created['file_id']}/content", headers=account.headers)).status_code == 404

    put = await client.put(_path(created["upload_url"]), content=content, headers={"Content-Type": "application/pdf"})
    assert put.status_code == 200, put.text
    confirmed = await client.post(f"/v1/files/{created['file_id']}/confirm", headers=account.headers)
    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["size_bytes"]) == ("ready", len(content))
    assert (await client.get(f"/v1/files/{created['file_id']}/content", headers=account.headers)).content == content


async def test_a_url_works_once_and_not_when_tampered_or_expired(
    api: Api, client: httpx.AsyncClient, app: FastAPI
) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    path = _path(created["upload_url"])
    query = parse_qs(urlsplit(created["upload_url"]).query)

    tampered = path.replace(query["signature"][0], "0" * 64)
    assert_error(await client.put(tampered, content=content), 403, "FORBIDDEN", INVALID_URL)
    later = path.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 3600}")
    assert_error(await client.put(later, content=content), 403, "FORBIDDEN", INVALID_URL)

    assert (await client.put(path, content=content)).status_code == 200
    reused = await client.put(path, content=content)
    assert_error(
        reused, 409, "CONFLICT", "This upload URL was already used. Request a new one with POST /v1/files/upload-url."
    )

    expired_app_settings = app.state.settings.model_copy(update={"upload_url_ttl_seconds": 1})
    app.state.settings = expired_app_settings
    short = await _upload_url(client, account, content)
    await asyncio.sleep(2.1)
    assert_error(await client.put(_path(short["upload_url"]), content=content), 403, "FORBIDDEN", INVALID_URL)


async def test_confirm_checks_the_size_and_the_put_checks_the_type(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    content = samples.pdf()
    short = await _upload_url(client, account, content, size_bytes=len(content) + 10)
    assert (await client.put(_path(short["upload_url"]), content=content)).status_code == 200
    mismatch = await client.post(f"/v1/files/{short['file_id']}/confirm", headers=account.headers)
    message = f"Uploaded {len(content)} bytes but {len(content) + 10} were declared; the upload was discarded."
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["details"] == {"fields": {"size_bytes": [message]}}

    over = await _upload_url(client, account, content, size_bytes=len(content) - 1)
    assert (await client.put(_path(over["upload_url"]), content=content)).status_code == 413

    wrong_type = await _upload_url(client, account, content, content_type="image/png")
    refused = await client.put(_path(wrong_type["upload_url"]), content=content)
    assert refused.status_code == 415
    assert samples.stored_files(settings.storage_dir) == []

    nothing = await _upload_url(client, account, content)
    early = await client.post(f"/v1/files/{nothing['file_id']}/confirm", headers=account.headers)
    assert_error(early, 409, "CONFLICT", "Nothing was uploaded to this file's upload URL yet.")


async def test_upload_url_bad_input_and_limits(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    response = await client.post(
        "/v1/files/upload-url",
        json={"filename": "x.exe", "content_type": "application/x-msdownload", "size_bytes": 10},
        headers=account.headers,
    )
    assert list(response.json()["error"]["details"]["fields"]) == ["content_type"]
    too_big = await client.post(
        "/v1/files/upload-url",
        json={"filename": "big.mp4", "content_type": "video/mp4", "size_bytes": 500_000_000},
        headers=account.headers,
    )
    assert too_big.status_code == 413  # the free plan allows 25 MB
    stranger = await api.register()
    created = await _upload_url(client, account, samples.pdf())
    foreign = await client.post(f"/v1/files/{created['file_id']}/confirm", headers=stranger.headers)
    assert foreign.status_code == 404


async def test_unconfirmed_uploads_are_cleaned_up(
    api: Api, client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    await client.put(_path(created["upload_url"]), content=content)
    kept = await _upload_url(client, account, content)

    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE files SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(minutes=1), "id": created["file_id"]},
        )
    await engine.dispose()

    ctx: dict[str, Any] = {"settings": settings}
    await startup(ctx)
    try:
        assert await cleanup_pending_task(ctx) == 1
    finally:
        await shutdown(ctx)
    assert (await client.get(f"/v1/files/{created['file_id']}", headers=account.headers)).status_code == 404
    assert (await client.get(f"/v1/files/{kept['file_id']}", headers=account.headers)).status_code == 200
    assert samples.stored_files(settings.storage_dir) == []


async def test_a_signature_that_is_not_ascii_is_refused_not_a_server_error(
    api: Api, raw_client: httpx.AsyncClient
) -> None:
    """Found by the fuzz run (issue 14): `hmac.compare_digest` raises on non-ASCII text, so a signature
    like `²` answered 500 instead of the invalid-URL 403, for a file that exists or not."""
    account = await api.register()
    created = await _upload_url(raw_client, account, samples.pdf())
    for file_id in ("file_missing", created["file_id"]):
        response = await raw_client.put(
            f"/v1/files/{file_id}/upload?signature=%C2%B2&expires=-42157975", content=samples.pdf()
        )
        assert_error(response, 403, "FORBIDDEN", INVALID_URL)


async def test_a_download_answers_with_a_content_type_its_openapi_entry_documents(
    api: Api, client: httpx.AsyncClient
) -> None:
    """Found by the fuzz run's stateful phase: the download was documented as octet-stream only."""
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    assert (await client.put(_path(created["upload_url"]), content=content)).status_code == 200
    assert (await client.post(f"/v1/files/{created['file_id']}/confirm", headers=account.headers)).status_code == 200
    download = await client.get(f"/v1/files/{created['file_id']}/content", headers=account.headers)
    assert download.headers["content-type"] == "application/pdf"
    spec = (await client.get("/openapi.json")).json()
    documented = spec["paths"]["/v1/files/{file_id}/content"]["get"]["responses"]["200"]["content"]
    assert "application/pdf" in documented and "image/png" in documented
