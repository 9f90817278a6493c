"""`/v1/files`: streamed uploads with limits and type detection, reads, downloads, tenancy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.files import samples
from tests.files.conftest import BACKENDS
from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api

MB = 1024 * 1024
FILE_NOT_FOUND = "No file with this id."


async def _upload(
    client: httpx.AsyncClient, account: Account, name: str, content: bytes, **data: str
) -> httpx.Response:
    return await client.post(
        "/v1/files", files={"file": (name, content, "application/octet-stream")}, data=data, headers=account.headers
    )


Stored = Callable[[], Awaitable[list[str]]]


@BACKENDS
@pytest.mark.parametrize(
    ("name", "make", "content_type"),
    [
        ("report.pdf", samples.pdf, "application/pdf"),
        ("chart.png", samples.png, "image/png"),
        ("scan.tif", lambda: samples.image("TIFF", pages=2), "image/tiff"),
        ("scan.bmp", lambda: samples.image("BMP"), "image/bmp"),
        ("letter.docx", samples.docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("episode.mp3", samples.mp3, "audio/mpeg"),
        ("notes.txt", samples.text, "text/plain"),
        ("README.md", samples.text, "text/markdown"),
        ("data.csv", lambda: b"a,b\n1,2\n", "text/csv"),
    ],
)
async def test_upload_detects_the_type_from_the_bytes(
    api: Api,
    client: httpx.AsyncClient,
    name: str,
    make,
    content_type: str,  # type: ignore[no-untyped-def]
) -> None:
    account = await api.register()
    content = make()
    response = await _upload(client, account, name, content, metadata=json.dumps({"source": "user_upload"}))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("file_")
    assert body["content_type"] == content_type
    assert (body["filename"], body["size_bytes"], body["status"]) == (name, len(content), "ready")
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["metadata"] == {"source": "user_upload"}

    download = await client.get(f"/v1/files/{body['id']}/content", headers=account.headers)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"].startswith(content_type)
    assert download.headers["etag"] == f'"{body["sha256"]}"'


@BACKENDS
async def test_a_renamed_executable_is_refused_and_not_kept(
    api: Api, client: httpx.AsyncClient, stored: Stored
) -> None:
    account = await api.register()
    response = await _upload(client, account, "invoice.pdf", samples.elf())
    assert_error(
        response,
        415,
        "UNSUPPORTED_FILE_TYPE",
        "'invoice.pdf' is not a supported file type. Accepted: PDF, DOCX, TXT, MD, CSV, MP3, MP4, WAV, PNG, JPG, TIFF, "
        "BMP (detected from the file's content, not its name or declared type).",
    )
    assert await stored() == []


async def _chunks(total: int, chunk: int = MB) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield b"a" * size
        sent += size


@BACKENDS
async def test_an_upload_over_the_plan_limit_is_cut_off_with_nothing_left(
    api: Api, client: httpx.AsyncClient, stored: Stored
) -> None:
    account = await api.register()
    boundary = "bp-boundary"
    sent = {"bytes": 0}

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        async for part in _chunks(40 * MB):
            sent["bytes"] += len(part)
            yield part
        yield f"\r\n--{boundary}--\r\n".encode()

    # No Content-Length (chunked): the limit is enforced while the bytes stream in.
    response = await client.post(
        "/v1/files",
        content=body(),
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(
        response, 413, "PAYLOAD_TOO_LARGE", "The file is larger than the 25 MB allowed here.", {"max_bytes": 25 * MB}
    )
    assert sent["bytes"] < 40 * MB  # refused before the client finished sending
    assert await stored() == []
    listed = await client.get("/v1/files", headers=account.headers)
    assert listed.json()["data"] == []


async def test_a_declared_content_length_over_the_limit_is_refused_at_once(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    response = await client.post(
        "/v1/files",
        content=b"x",
        headers={**account.headers, "Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(30 * MB)},
    )
    assert response.status_code == 413


async def test_agent_limits_apply_and_the_smaller_limit_wins(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register()
    refused = await _upload(client, account, "scan.png", samples.png(), agent_id="jordan")
    assert refused.status_code == 415
    accepted = await _upload(client, account, "scan.png", samples.png(), agent_id="taylor")
    assert accepted.status_code == 201
    big_text = b"word " * (11 * MB // 5)
    too_big = await _upload(client, account, "long.txt", big_text, agent_id="jordan")
    assert_error(
        too_big, 413, "PAYLOAD_TOO_LARGE", "The file is larger than the 10 MB allowed here.", {"max_bytes": 10 * MB}
    )
    unknown = await _upload(client, account, "a.txt", samples.text(), agent_id="zed")
    assert_invalid(unknown, {"agent_id": ["Unknown agent; one of jordan, maya, sam, taylor."]})


async def test_upload_bad_input(api: Api, client: httpx.AsyncClient, raw_client: httpx.AsyncClient) -> None:
    account = await api.register()
    no_file = await client.post(
        "/v1/files", data={"metadata": "{}"}, files={"other": ("x.txt", b"hi")}, headers=account.headers
    )
    assert_invalid(no_file, {"file": ["This field is required."]})
    empty = await _upload(client, account, "empty.txt", b"")
    assert_invalid(empty, {"file": ["The file is empty."]})
    bad_metadata = await _upload(client, account, "a.txt", samples.text(), metadata="[1, 2]")
    assert_invalid(bad_metadata, {"metadata": ["Must be a JSON object."]})
    not_multipart = await client.post("/v1/files", json={"file": "x"}, headers=account.headers)
    assert_invalid(not_multipart, {"file": ["Send the upload as multipart/form-data with a boundary."]})
    garbage = await raw_client.post(
        "/v1/files",
        content=b"--b\r\nno headers here",
        headers={**account.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert garbage.status_code in (201, 422), garbage.text
    assert garbage.status_code != 500
    two = await client.post(
        "/v1/files",
        files=[("file", ("a.txt", samples.text())), ("file", ("b.txt", samples.text()))],
        headers=account.headers,
    )
    assert_invalid(two, {"file": ["At most 1 file(s) per request."]})


@BACKENDS
async def test_list_get_delete_and_other_organizations(api: Api, client: httpx.AsyncClient, stored: Stored) -> None:
    owner = await api.register()
    stranger = await api.register()
    ids = [(await _upload(client, owner, f"f{i}.txt", samples.text())).json()["id"] for i in range(3)]
    page = (await client.get("/v1/files?limit=2", headers=owner.headers)).json()
    rest_response = await client.get(f"/v1/files?limit=2&cursor={page['next_cursor']}", headers=owner.headers)
    assert rest_response.status_code == 200, rest_response.text
    rest = rest_response.json()
    assert [f["id"] for f in page["data"] + rest["data"]] == list(reversed(ids))
    assert (await client.get("/v1/files", headers=stranger.headers)).json()["data"] == []

    for path in (f"/v1/files/{ids[0]}", f"/v1/files/{ids[0]}/content", "/v1/files/file_nope"):
        assert_not_found(await client.get(path, headers=stranger.headers), FILE_NOT_FOUND)
    assert_not_found(await client.delete(f"/v1/files/{ids[0]}", headers=stranger.headers), FILE_NOT_FOUND)

    assert (await client.delete(f"/v1/files/{ids[0]}", headers=owner.headers)).status_code == 204
    assert_not_found(await client.get(f"/v1/files/{ids[0]}", headers=owner.headers), FILE_NOT_FOUND)
    assert len(await stored()) == 2


async def test_test_mode_keys_see_only_test_mode_files(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    test_key = (await owner.create_key(mode="test", scopes=["read", "write"]))["key"]
    test_headers = {"Authorization": f"Bearer {test_key}"}
    live = (await _upload(client, owner, "live.txt", samples.text())).json()
    made = await client.post("/v1/files", files={"file": ("test.txt", samples.text())}, headers=test_headers)
    assert made.json()["livemode"] is False
    assert [f["id"] for f in (await client.get("/v1/files", headers=test_headers)).json()["data"]] == [
        made.json()["id"]
    ]
    assert_not_found(await client.get(f"/v1/files/{live['id']}", headers=test_headers), FILE_NOT_FOUND)


async def test_a_read_key_cannot_upload(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    key = (await owner.create_key(scopes=["read"]))["key"]
    response = await client.post(
        "/v1/files", files={"file": ("a.txt", samples.text())}, headers={"Authorization": f"Bearer {key}"}
    )
    assert_error(response, 403, "FORBIDDEN", "This API key lacks the 'write' scope.", {"required_scope": "write"})


def test_app_fixture_type(app: FastAPI) -> None:
    assert app.state.storage.root == Path(app.state.settings.storage_dir).resolve()


async def test_writes_need_write_and_reads_work_for_a_viewer(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register()
    viewer = await api.register()
    await api.add_member(owner, viewer, "viewer")
    created = (await _upload(client, owner, "a.txt", samples.text())).json()
    as_viewer = viewer.in_org(owner.organization_id)
    role_refusal = "Your role 'viewer' does not allow this action; it requires 'member'."
    details = {"required_role": "member", "role": "viewer"}
    assert_error(
        await client.delete(f"/v1/files/{created['id']}", headers=as_viewer), 403, "FORBIDDEN", role_refusal, details
    )
    url = await client.post(
        "/v1/files/upload-url",
        json={"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10},
        headers=as_viewer,
    )
    assert_error(url, 403, "FORBIDDEN", role_refusal, details)
    confirm = await client.post(f"/v1/files/{created['id']}/confirm", headers=as_viewer)
    assert_error(confirm, 403, "FORBIDDEN", role_refusal, details)
    assert (await client.get(f"/v1/files/{created['id']}", headers=as_viewer)).status_code == 200
    assert (await client.get(f"/v1/files/{created['id']}/content", headers=as_viewer)).status_code == 200
    anonymous = await client.get(f"/v1/files/{created['id']}")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHORIZED"
