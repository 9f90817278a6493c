"""Resumable multipart uploads (`/v1/files/uploads`), on local storage and on the S3 stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.files import uploads
from backplane.files.tasks import cleanup_pending_task
from backplane.files.uploads import sweep_stray_parts
from backplane.workers.context import session_scope
from backplane.workers.settings import shutdown, startup
from tests.files import samples
from tests.files.conftest import BACKENDS
from tests.fixtures.assertions import assert_error, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.fixtures.net import free_port
from tests.fixtures.waiting import until

MB = 1024 * 1024
PART = 8 * MB
# The figure: about 10 s on local storage and 12 s on the S3 stand-in (moto keeps parts in
# this process's memory); bench/uploads.py --multipart measures the server's memory for the same size.
BIG = 300 * MB
PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
NO_UPLOAD = "No upload with this id."
PART_URL_INVALID = "This part URL is invalid or has expired. GET /v1/files/uploads/{id} gives fresh ones."
PARTS_AT_THE_STORAGE = (
    "This upload takes its parts at the storage's own pre-signed URLs: GET /v1/files/uploads/{id} gives them."
)
SIGNATURE_MISMATCH = "The request signature we calculated does not match the signature you provided."
CHECKOUT = {
    "price_id": "price_enterprise_monthly",
    "seats": 1,
    "success_url": "https://app.example.com/billing/success",
    "cancel_url": "https://app.example.com/billing/cancel",
}


def part_bytes(number: int, size: int) -> bytes:
    """Part `number` of the big file, made again on demand (the test never holds the whole file)."""
    data = random.Random(number).randbytes(size)
    return PDF_HEAD + data[len(PDF_HEAD) :] if number == 1 else data


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on loopback, in this loop (a client can hang up mid-part), with the
    part URLs of local storage pointing at it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await until(started)
    base = f"http://127.0.0.1:{port}"
    app.state.settings = app.state.settings.model_copy(update={"public_base_url": base})
    yield base
    server.should_exit = True
    await task


async def _enterprise(api: Api, client: httpx.AsyncClient) -> Account:
    """An organization on the enterprise plan (500 MB uploads), bought through local checkout."""
    account = await api.register()
    response = await client.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=account.headers)
    assert response.status_code == 200, response.text
    completed = await client.post(_path(response.json()["checkout_url"]), headers=account.headers)
    assert completed.status_code == 303
    return account


async def _start(client: httpx.AsyncClient, account: Account, size: int, **overrides: Any) -> dict[str, Any]:
    body = {"filename": "big.pdf", "content_type": "application/pdf", "size_bytes": size, **overrides}
    response = await client.post("/v1/files/uploads", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _put(url: str, data: bytes) -> httpx.Response:
    """A plain PUT of the part's bytes to its URL, without a bearer token (as a client does)."""
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.put(url, content=data)


def _s3_code(response: httpx.Response) -> tuple[int, str, str]:
    body = response.text
    code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else ""
    message = body.split("<Message>")[1].split("</Message>")[0] if "<Message>" in body else ""
    return response.status_code, code, message


async def _send_parts(parts: list[dict[str, Any]], at_once: int = 4) -> None:
    """The parts, shuffled, `at_once` in flight."""
    gate = asyncio.Semaphore(at_once)

    async def send(part: dict[str, Any]) -> None:
        async with gate:
            data = await asyncio.to_thread(part_bytes, part["part_number"], part["size_bytes"])
            response = await _put(part["upload_url"], data)
            assert response.status_code == 200, response.text

    shuffled = random.Random(7).sample(parts, len(parts))
    await asyncio.gather(*(send(part) for part in shuffled))


async def _cut_mid_part(url: str, data: bytes) -> None:
    """Send the request line, the headers and half the body, then hang up."""
    target = urlsplit(url)
    assert target.hostname is not None and target.port is not None
    request = (
        f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()

    def _send() -> None:
        with socket.create_connection((target.hostname, target.port)) as sock:
            sock.sendall(request + data[: len(data) // 2])
            sock.shutdown(socket.SHUT_RDWR)

    await asyncio.to_thread(_send)


@BACKENDS
async def test_a_300_mb_file_in_parallel_parts_survives_a_cut_and_resumes_from_what_was_received(
    api: Api,
    client: httpx.AsyncClient,
    served: str,
    settings: Settings,
    stored: Callable[[], Awaitable[list[str]]],
) -> None:
    account = await _enterprise(api, client)
    async with httpx.AsyncClient(base_url=served, timeout=120) as http:
        created = await _start(http, account, BIG, part_size=PART)
        parts = created["parts"]
        assert len(parts) == 38 and created["status"] == "uploading" and created["received"] == []
        assert [p["size_bytes"] for p in parts] == [PART] * 37 + [BIG - 37 * PART]
        if settings.s3.enabled:
            assert "uploadId=" in parts[0]["upload_url"] and "X-Amz-Signature=" in parts[0]["upload_url"]
        else:
            assert parts[0]["upload_url"].startswith(f"{served}/v1/files/uploads/{created['id']}/parts/1?")

        # The first half arrives in parallel and in any order; then the connection drops mid-part.
        first, rest = parts[:19], parts[19:]
        await _send_parts(first)
        cut = rest[0]
        await _cut_mid_part(cut["upload_url"], part_bytes(cut["part_number"], cut["size_bytes"]))

        # The client lost its place: it asks what was received, and the cut part is not among it.
        async def received() -> list[dict[str, Any]]:
            response = await http.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)
            assert response.status_code == 200, response.text
            body: list[dict[str, Any]] = response.json()["received"]
            return body

        expected = [{"part_number": p["part_number"], "size_bytes": p["size_bytes"]} for p in first]
        assert await received() == expected
        early = await http.post(f"/v1/files/uploads/{created['id']}/complete", headers=account.headers)
        assert early.status_code == 409 and early.json()["error"]["details"]["missing_parts"] == list(range(20, 39))

        # It sends the rest to the URLs GET gives, and completes.
        fresh = (await http.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
        have = {p["part_number"] for p in fresh["received"]}
        await _send_parts([p for p in fresh["parts"] if p["part_number"] not in have])
        assert len(await received()) == 38

        # Complete joins 300 MB without holding them: Python's allocations stay within a few MB (measured on
        # local storage only: the S3 stand-in joins the parts in this process too).
        tracemalloc.start()
        completed = await http.post(f"/v1/files/uploads/{created['id']}/complete", headers=account.headers)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert completed.status_code == 200, completed.text
        if not settings.s3.enabled:
            assert peak < 16 * MB, peak
        file = completed.json()
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part_bytes(part["part_number"], part["size_bytes"]))
        assert (file["status"], file["size_bytes"], file["content_type"]) == ("ready", BIG, "application/pdf")
        assert file["id"] == created["file_id"] and file["sha256"] == digest.hexdigest()

        # The bytes stored are the bytes sent: downloaded (streamed) and hashed again.
        downloaded = hashlib.sha256()
        async with http.stream("GET", f"/v1/files/{file['id']}/content", headers=account.headers) as download:
            assert download.status_code == 200
            async for chunk in download.aiter_bytes():
                downloaded.update(chunk)
        assert downloaded.hexdigest() == digest.hexdigest()

        # Completing again returns the same file; the upload no longer lists parts; nothing partial is left.
        again = await http.post(f"/v1/files/uploads/{created['id']}/complete", headers=account.headers)
        assert again.json() == file
        after = (await http.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
        assert (after["status"], after["parts"], after["received"]) == ("completed", [], [])
        left = await stored()
        assert len(left) == 1 and left[0].endswith(f"{account.organization_id}/{file['id']}")


async def test_local_part_urls_tampered_expired_foreign_or_of_another_size_are_refused(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    other = await api.register()
    content = samples.pdf()
    created = await _start(client, account, len(content))
    mine = await _start(client, other, len(content))
    [part] = created["parts"]
    path = _path(part["upload_url"])
    query = parse_qs(urlsplit(part["upload_url"]).query)

    tampered = path.replace(query["signature"][0], "0" * 64)
    assert_error(await client.put(tampered, content=content), 403, "FORBIDDEN", PART_URL_INVALID)
    later = path.replace(f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 3600}")
    assert_error(await client.put(later, content=content), 403, "FORBIDDEN", PART_URL_INVALID)
    # Another organization's upload id, or another part number, under this URL's signature.
    foreign = path.replace(created["id"], mine["id"])
    assert_error(await client.put(foreign, content=content), 403, "FORBIDDEN", PART_URL_INVALID)
    other_part = path.replace("/parts/1?", "/parts/2?")
    assert_error(await client.put(other_part, content=content), 403, "FORBIDDEN", PART_URL_INVALID)
    not_ascii = path.replace(query["signature"][0], "é" * 10)
    assert_error(await client.put(not_ascii, content=content), 403, "FORBIDDEN", PART_URL_INVALID)

    size_message = f"Part 1 must be exactly {len(content)} bytes; it was discarded."
    assert_error(
        await client.put(path, content=content + b"x"),
        422,
        "VALIDATION_ERROR",
        size_message,
        {"fields": {"body": [size_message]}},
    )

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: cut off while streaming
        yield content
        yield b"more"

    assert_error(
        await client.put(path, content=chunked()),
        422,
        "VALIDATION_ERROR",
        size_message,
        {"fields": {"body": [size_message]}},
    )
    assert samples.stored_files(settings.storage_dir) == []

    # The other organization's upload is not found by this one (GET, complete, abort).
    for method, suffix in (("GET", ""), ("POST", "/complete"), ("DELETE", "")):
        response = await client.request(method, f"/v1/files/uploads/{mine['id']}{suffix}", headers=account.headers)
        assert_not_found(response, NO_UPLOAD)
    assert_not_found(await client.get("/v1/files/uploads/upl_nope", headers=account.headers), NO_UPLOAD)

    # An expired upload's URLs are refused, though correctly signed.
    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE uploads SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(seconds=5), "id": created["id"]},
        )
    await engine.dispose()
    expired = (await client.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
    assert_error(
        await client.put(_path(expired["parts"][0]["upload_url"]), content=content), 403, "FORBIDDEN", PART_URL_INVALID
    )
    assert_error(
        await client.post(f"/v1/files/uploads/{created['id']}/complete", headers=account.headers),
        409,
        "CONFLICT",
        "This upload has expired.",
    )


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
async def test_s3_part_urls_tampered_expired_or_foreign_are_refused_by_the_bucket(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    account = await api.register()
    content = samples.pdf()
    created = await _start(client, account, len(content))
    mine = await _start(client, account, len(content))
    url = created["parts"][0]["upload_url"]
    query = parse_qs(urlsplit(url).query)

    tampered = url.replace(query["X-Amz-Signature"][0], "0" * 64)
    assert _s3_code(await _put(tampered, content)) == (403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
    foreign = url.replace(query["uploadId"][0], parse_qs(urlsplit(mine["parts"][0]["upload_url"]).query)["uploadId"][0])
    assert _s3_code(await _put(foreign, content)) == (403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)
    assert _s3_code(await _put(url, content + b"x")) == (403, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)

    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE uploads SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() + timedelta(seconds=1), "id": created["id"]},
        )
    await engine.dispose()
    short = (await client.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
    await asyncio.sleep(2.1)
    assert _s3_code(await _put(short["parts"][0]["upload_url"], content)) == (
        403,
        "AccessDenied",
        "Request has expired",
    )
    listed = (await client.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
    assert listed["received"] == []


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
async def test_a_local_part_url_is_refused_with_409_when_the_storage_is_s3(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    """A correctly signed part URL of this service (as local storage hands out, e.g. before a switch
    to S3) reaches an upload whose parts S3 takes: a 409 pointing at the fresh URLs, never a 500."""
    account = await api.register()
    content = samples.pdf()
    created = await _start(client, account, len(content))
    expires = int(utcnow().timestamp()) + 600
    signature = uploads._part_signature(settings, created["id"], 1, expires)
    response = await client.put(
        f"/v1/files/uploads/{created['id']}/parts/1?expires={expires}&signature={signature}", content=content
    )
    assert_error(response, 409, "CONFLICT", PARTS_AT_THE_STORAGE)
    listed = (await client.get(f"/v1/files/uploads/{created['id']}", headers=account.headers)).json()
    assert listed["received"] == []


@BACKENDS
async def test_complete_checks_type_from_the_bytes_and_the_agents_limits_and_keeps_nothing_refused(
    api: Api, client: httpx.AsyncClient, stored: Callable[[], Awaitable[list[str]]]
) -> None:
    account = await api.register()
    text_bytes = b"plain text, declared as a PDF\n" * 10
    lying = await _start(client, account, len(text_bytes))
    await _upload_part(client, lying["parts"][0], text_bytes)
    refused = await client.post(f"/v1/files/uploads/{lying['id']}/complete", headers=account.headers)
    assert refused.status_code == 415 and refused.json()["error"]["code"] == "UNSUPPORTED_FILE_TYPE"
    assert_not_found(await client.get(f"/v1/files/uploads/{lying['id']}", headers=account.headers), NO_UPLOAD)
    assert_not_found(
        await client.get(f"/v1/files/{lying['file_id']}", headers=account.headers), "No file with this id."
    )

    # Jordan takes text only: a real PDF for Jordan is refused at complete.
    pdf = samples.pdf()
    for_jordan = await _start(client, account, len(pdf), agent_id="jordan")
    await _upload_part(client, for_jordan["parts"][0], pdf)
    refused = await client.post(f"/v1/files/uploads/{for_jordan['id']}/complete", headers=account.headers)
    assert refused.status_code == 415
    # And a size over Jordan's 10 MB is refused when the upload starts.
    too_big = await client.post(
        "/v1/files/uploads",
        json={"filename": "a.txt", "content_type": "text/plain", "size_bytes": 11 * MB, "agent_id": "jordan"},
        headers=account.headers,
    )
    assert_error(
        too_big, 413, "PAYLOAD_TOO_LARGE", "The file is larger than the 10 MB allowed here.", {"max_bytes": 10 * MB}
    )
    over_plan = await client.post(
        "/v1/files/uploads",
        json={"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 26 * MB},
        headers=account.headers,
    )
    assert over_plan.status_code == 413
    assert await stored() == []


async def _upload_part(client: httpx.AsyncClient, part: dict[str, Any], data: bytes) -> None:
    """Local part URLs go through the test client (http://testserver); S3 ones straight to the bucket."""
    if part["upload_url"].startswith("http://testserver/"):
        response = await client.put(_path(part["upload_url"]), content=data)
    else:
        response = await _put(part["upload_url"], data)
    assert response.status_code == 200, response.text


@BACKENDS
async def test_abort_and_the_expiry_cron_free_every_part(
    api: Api, client: httpx.AsyncClient, settings: Settings, stored: Callable[[], Awaitable[list[str]]]
) -> None:
    account = await api.register()
    size = 12 * MB
    aborted = await _start(client, account, size, part_size=5 * MB, filename="a.txt", content_type="text/plain")
    expiring = await _start(client, account, size, part_size=5 * MB, filename="b.txt", content_type="text/plain")
    kept = await _start(client, account, size, part_size=5 * MB, filename="c.txt", content_type="text/plain")
    for upload in (aborted, expiring, kept):
        await _upload_part(client, upload["parts"][0], b"a" * 5 * MB)
    assert len(await stored()) == 3

    assert (await client.delete(f"/v1/files/uploads/{aborted['id']}", headers=account.headers)).status_code == 204
    assert_not_found(await client.get(f"/v1/files/uploads/{aborted['id']}", headers=account.headers), NO_UPLOAD)
    assert len(await stored()) == 2

    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE uploads SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(minutes=1), "id": expiring["id"]},
        )
    await engine.dispose()
    ctx: dict[str, Any] = {"settings": settings}
    await startup(ctx)
    try:
        assert await cleanup_pending_task(ctx) == 1
    finally:
        await shutdown(ctx)
    assert_not_found(await client.get(f"/v1/files/uploads/{expiring['id']}", headers=account.headers), NO_UPLOAD)
    assert len(await stored()) == 1
    still = (await client.get(f"/v1/files/uploads/{kept['id']}", headers=account.headers)).json()
    assert still["received"] == [{"part_number": 1, "size_bytes": 5 * MB}]

    # Deleting the pending file (DELETE /v1/files/{id}) takes its parts too.
    assert (await client.delete(f"/v1/files/{kept['file_id']}", headers=account.headers)).status_code == 204
    assert await stored() == []


async def test_a_completed_upload_cannot_be_aborted_and_bad_requests_are_refused(
    api: Api, client: httpx.AsyncClient
) -> None:
    account = await api.register()
    pdf = samples.pdf()
    created = await _start(client, account, len(pdf))
    await _upload_part(client, created["parts"][0], pdf)
    # The pending file is not confirmed by the pre-signed upload's route: only complete assembles it.
    assert_error(
        await client.post(f"/v1/files/{created['file_id']}/confirm", headers=account.headers),
        409,
        "CONFLICT",
        "Nothing was uploaded to this file's upload URL yet.",
    )
    assert (
        await client.post(f"/v1/files/uploads/{created['id']}/complete", headers=account.headers)
    ).status_code == 200
    assert_error(
        await client.delete(f"/v1/files/uploads/{created['id']}", headers=account.headers),
        409,
        "CONFLICT",
        "This upload is completed; delete its file with DELETE /v1/files/{id}.",
    )
    for body in (
        {"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "part_size": MB},
        {"filename": "a.pdf", "content_type": "application/x-msdownload", "size_bytes": 10},
        {"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 0},
        {"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "agent_id": "nobody"},
    ):
        response = await client.post("/v1/files/uploads", json=body, headers=account.headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR", body


@BACKENDS
async def test_the_cron_frees_parts_that_no_upload_in_progress_owns(
    api: Api, client: httpx.AsyncClient, app: FastAPI, settings: Settings, stored: Callable[[], Awaitable[list[str]]]
) -> None:
    account = await api.register()
    pdf = samples.pdf()
    live = await _start(client, account, len(pdf))
    await _upload_part(client, live["parts"][0], pdf)
    done = await _start(client, account, len(pdf))
    await _upload_part(client, done["parts"][0], pdf)
    assert (await client.post(f"/v1/files/uploads/{done['id']}/complete", headers=account.headers)).status_code == 200
    assert len(await stored()) == 2  # the live upload's part, the completed file

    # Parts that reach no upload in progress: one that finished streaming after its upload was completed
    # (local), or an S3 multipart upload begun by a request whose transaction then failed.
    storage = app.state.storage
    late_key = f"{account.organization_id}/{done['file_id']}"
    lost_key = f"{account.organization_id}/file_{'0' * 24}"
    if settings.s3.enabled:
        await storage.start_parts(late_key)
        await storage.start_parts(lost_key)
    else:
        for key in (late_key, lost_key):
            writer = await storage.part_writer(key, 1)
            await writer.write(b"late part")
            await writer.commit()
    assert len(await stored()) == 4

    ctx: dict[str, Any] = {"settings": settings}
    await startup(ctx)
    try:
        assert await cleanup_pending_task(ctx) == 0  # younger than the grace period: left to the next run
        async with session_scope(ctx) as session:
            assert await sweep_stray_parts(session, storage, utcnow() + timedelta(minutes=1)) == 2
    finally:
        await shutdown(ctx)
    assert len(await stored()) == 2
    still = (await client.get(f"/v1/files/uploads/{live['id']}", headers=account.headers)).json()
    assert still["received"] == [{"part_number": 1, "size_bytes": len(pdf)}]
    download = await client.get(f"/v1/files/{done['file_id']}/content", headers=account.headers)
    assert download.content == pdf
