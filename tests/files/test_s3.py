"""Files on S3 (moto's server on loopback): streamed multipart uploads, real pre-signed PUT URLs, confirm,
cleanup. S3's own refusals (expired URL, signature, size, type) come over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.files.presigned import sweep_stray_uploads
from backplane.files.s3 import S3Storage
from backplane.files.tasks import cleanup_pending_task
from backplane.workers.settings import shutdown, startup
from tests.files import samples
from tests.fixtures.assertions import assert_error, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.fixtures.s3 import S3

MB = 1024 * 1024
NOTHING_UPLOADED = "Nothing was uploaded to this file's upload URL yet."


@pytest.fixture
def backend() -> str:
    return "s3"


async def _upload_url(client: httpx.AsyncClient, account: Account, content: bytes, **overrides: Any) -> dict[str, Any]:
    body = {"filename": "scan.pdf", "content_type": "application/pdf", "size_bytes": len(content), **overrides}
    response = await client.post("/v1/files/upload-url", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _put(url: str, content: bytes, content_type: str = "application/pdf") -> httpx.Response:
    """What the guide's client does: a plain HTTP PUT of the bytes to the URL, no bearer token."""
    async with httpx.AsyncClient() as http:
        return await http.put(url, content=content, headers={"Content-Type": content_type})


def _s3_error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.text
    code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else ""
    message = body.split("<Message>")[1].split("</Message>")[0] if "<Message>" in body else ""
    return response.status_code, code, message


def _file_key(account: Account, file_id: str) -> str:
    return f"tenant-files/{account.organization_id}/{file_id}"


def _upload_key(account: Account, file_id: str) -> str:
    return f"tenant-files/uploads/{account.organization_id}/{file_id}"


def test_the_app_keeps_files_in_the_bucket(app: FastAPI, s3: S3) -> None:
    assert isinstance(app.state.storage, S3Storage)
    assert app.state.storage.bucket == s3.bucket


async def test_the_guides_three_steps_straight_to_the_bucket(api: Api, client: httpx.AsyncClient, s3: S3) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    file_id = created["file_id"]
    assert created["upload_url"].startswith(f"{s3.server.url}/{s3.bucket}/{_upload_key(account, file_id)}?")
    assert (await client.get(f"/v1/files/{file_id}/content", headers=account.headers)).status_code == 404

    assert (await _put(created["upload_url"], content)).status_code == 200
    assert await s3.keys() == [_upload_key(account, file_id)]
    confirmed = await client.post(f"/v1/files/{file_id}/confirm", headers=account.headers)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert (body["status"], body["size_bytes"], body["content_type"]) == ("ready", len(content), "application/pdf")
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert await s3.keys() == [_file_key(account, file_id)]  # moved out of the URL's reach
    download = await client.get(f"/v1/files/{file_id}/content", headers=account.headers)
    assert (download.status_code, download.content) == (200, content)
    assert download.headers["etag"] == f'"{body["sha256"]}"'

    # The URL still works until it expires (S3 cannot make it single-use), but it no longer reaches the file.
    other = content.replace(b"/Count 0", b"/Count 9")
    assert len(other) == len(content) and other != content
    assert (await _put(created["upload_url"], other)).status_code == 200
    again = await client.post(f"/v1/files/{file_id}/confirm", headers=account.headers)
    assert (again.status_code, again.json()["sha256"]) == (200, body["sha256"])
    assert (await client.get(f"/v1/files/{file_id}/content", headers=account.headers)).content == content
    assert await s3.get(_file_key(account, file_id)) == content

    assert (await client.delete(f"/v1/files/{file_id}", headers=account.headers)).status_code == 204
    assert await s3.keys() == []  # the file and the stray upload


async def test_s3_refuses_tampered_expired_and_other_size_or_type_puts(
    api: Api, client: httpx.AsyncClient, app: FastAPI, s3: S3
) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, account, content)
    url = created["upload_url"]
    query = parse_qs(urlsplit(url).query)
    mismatch = "The request signature we calculated does not match the signature you provided."

    tampered = url.replace(query["X-Amz-Signature"][0], "0" * 64)
    assert _s3_error(await _put(tampered, content)) == (403, "SignatureDoesNotMatch", mismatch)
    longer = url.replace(f"X-Amz-Expires={query['X-Amz-Expires'][0]}", "X-Amz-Expires=604800")
    assert _s3_error(await _put(longer, content)) == (403, "SignatureDoesNotMatch", mismatch)
    other_key = url.replace(created["file_id"], "file_" + "0" * 24)
    assert _s3_error(await _put(other_key, content)) == (403, "SignatureDoesNotMatch", mismatch)
    assert _s3_error(await _put(url, content + b"more")) == (403, "SignatureDoesNotMatch", mismatch)
    assert _s3_error(await _put(url, content, "image/png")) == (403, "SignatureDoesNotMatch", mismatch)
    assert await s3.leftovers() == []
    early = await client.post(f"/v1/files/{created['file_id']}/confirm", headers=account.headers)
    assert_error(early, 409, "CONFLICT", NOTHING_UPLOADED)

    app.state.settings = app.state.settings.model_copy(update={"upload_url_ttl_seconds": 1})
    short = await _upload_url(client, account, content)
    assert parse_qs(urlsplit(short["upload_url"]).query)["X-Amz-Expires"] == ["1"]
    await asyncio.sleep(2.1)
    assert _s3_error(await _put(short["upload_url"], content)) == (403, "AccessDenied", "Request has expired")
    assert await s3.leftovers() == []


async def test_confirm_checks_the_real_size_and_type_and_deletes_refused_bytes(
    api: Api, client: httpx.AsyncClient, s3: S3
) -> None:
    account = await api.register()
    content = samples.pdf()

    # S3 binds the size into the signature; a store that did not would leave the check to confirm.
    sized = await _upload_url(client, account, content)
    await s3.put(_upload_key(account, sized["file_id"]), content + b"0123456789")
    refused = await client.post(f"/v1/files/{sized['file_id']}/confirm", headers=account.headers)
    message = f"Uploaded {len(content) + 10} bytes but {len(content)} were declared; the upload was discarded."
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == {"fields": {"size_bytes": [message]}}
    assert await s3.leftovers() == []
    pending = await client.get(f"/v1/files/{sized['file_id']}", headers=account.headers)
    assert (pending.json()["status"], pending.json()["size_bytes"], pending.json()["sha256"]) == ("pending", 0, None)
    # The URL has not expired: the right bytes may still come.
    assert (await _put(sized["upload_url"], content)).status_code == 200
    assert (await client.post(f"/v1/files/{sized['file_id']}/confirm", headers=account.headers)).status_code == 200

    # The declared Content-Type is signed, not the bytes: a renamed executable gets through S3, not confirm.
    executable = samples.elf()
    renamed = await _upload_url(client, account, executable, filename="invoice.pdf")
    assert (await _put(renamed["upload_url"], executable)).status_code == 200
    assert_error(
        await client.post(f"/v1/files/{renamed['file_id']}/confirm", headers=account.headers),
        415,
        "UNSUPPORTED_FILE_TYPE",
        "'invoice.pdf' is not a supported file type. Accepted: PDF, DOCX, TXT, MD, CSV, MP3, MP4, WAV, PNG, JPG, TIFF, "
        "BMP (detected from the file's content, not its name or declared type).",
    )
    png = await _upload_url(client, account, samples.png(), filename="chart.pdf")
    assert (await _put(png["upload_url"], samples.png())).status_code == 200
    assert (await client.post(f"/v1/files/{png['file_id']}/confirm", headers=account.headers)).status_code == 415
    assert await s3.leftovers() == [_file_key(account, sized["file_id"])]


async def test_another_organizations_file_is_404_and_untouched(api: Api, client: httpx.AsyncClient, s3: S3) -> None:
    owner = await api.register()
    stranger = await api.register()
    content = samples.pdf()
    created = await _upload_url(client, owner, content)
    assert (await _put(created["upload_url"], content)).status_code == 200
    file_id = created["file_id"]
    for response in (
        await client.post(f"/v1/files/{file_id}/confirm", headers=stranger.headers),
        await client.get(f"/v1/files/{file_id}", headers=stranger.headers),
        await client.delete(f"/v1/files/{file_id}", headers=stranger.headers),
    ):
        assert_not_found(response, "No file with this id.")
    assert await s3.keys() == [_upload_key(owner, file_id)]
    assert (await client.post(f"/v1/files/{file_id}/confirm", headers=owner.headers)).status_code == 200
    assert_not_found(
        await client.get(f"/v1/files/{file_id}/content", headers=stranger.headers), "No file with this id."
    )


async def _chunks(total: int, chunk: int = MB) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield bytes([65 + (sent // MB) % 26]) * size  # a letter per MB: parts out of order would show
        sent += size


async def test_streamed_uploads_go_up_in_parts_and_an_oversized_one_leaves_nothing(
    api: Api, client: httpx.AsyncClient, s3: S3
) -> None:
    account = await api.register()
    content = b"".join([chunk async for chunk in _chunks(12 * MB)])  # two 8 MB parts' worth, as text
    uploaded = await client.post(
        "/v1/files", files={"file": ("big.txt", content, "text/plain")}, headers=account.headers
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    assert uploaded.json()["sha256"] == hashlib.sha256(content).hexdigest()
    assert await s3.leftovers() == [_file_key(account, file_id)]
    download = await client.get(f"/v1/files/{file_id}/content", headers=account.headers)
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(content).digest()

    boundary = "bp-boundary"
    sent = {"bytes": 0}

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        async for part in _chunks(40 * MB):
            sent["bytes"] += len(part)
            yield part
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/v1/files",
        content=body(),
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(
        response, 413, "PAYLOAD_TOO_LARGE", "The file is larger than the 25 MB allowed here.", {"max_bytes": 25 * MB}
    )
    assert 24 * MB < sent["bytes"] < 40 * MB  # three parts had gone up before the limit was crossed
    assert await s3.multipart_uploads() == []
    assert await s3.leftovers() == [_file_key(account, file_id)]


async def test_cleanup_removes_unconfirmed_uploads_and_puts_after_confirm(
    api: Api, client: httpx.AsyncClient, app: FastAPI, settings: Settings, s3: S3
) -> None:
    account = await api.register()
    content = samples.pdf()
    stale = await _upload_url(client, account, content)
    assert (await _put(stale["upload_url"], content)).status_code == 200
    waiting = await _upload_url(client, account, content)
    assert (await _put(waiting["upload_url"], content)).status_code == 200
    confirmed = await _upload_url(client, account, content)
    assert (await _put(confirmed["upload_url"], content)).status_code == 200
    assert (await client.post(f"/v1/files/{confirmed['file_id']}/confirm", headers=account.headers)).status_code == 200
    assert (await _put(confirmed["upload_url"], content)).status_code == 200  # a stray PUT after confirm

    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE files SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(minutes=1), "id": stale["file_id"]},
        )
    await engine.dispose()

    async def run_cleanup() -> int:
        ctx: dict[str, Any] = {"settings": settings}
        await startup(ctx)
        try:
            assert isinstance(ctx["storage"], S3Storage)
            removed: int = await cleanup_pending_task(ctx)
            return removed
        finally:
            await shutdown(ctx)

    assert await run_cleanup() == 1  # the stale upload
    assert_not_found(
        await client.get(f"/v1/files/{stale['file_id']}", headers=account.headers), "No file with this id."
    )
    waiting_key = _upload_key(account, waiting["file_id"])
    kept = sorted([waiting_key, _file_key(account, confirmed["file_id"]), _upload_key(account, confirmed["file_id"])])
    assert sorted(await s3.keys()) == kept  # the stray PUT is younger than the grace period

    async with app.state.sessionmaker() as session:
        assert await sweep_stray_uploads(session, app.state.storage, utcnow() + timedelta(seconds=5)) == 1
    assert sorted(await s3.keys()) == sorted([waiting_key, _file_key(account, confirmed["file_id"])])
    assert (await client.get(f"/v1/files/{confirmed['file_id']}/content", headers=account.headers)).content == content
    assert (await client.post(f"/v1/files/{waiting['file_id']}/confirm", headers=account.headers)).status_code == 200
