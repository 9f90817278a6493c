"""MAX_REQUEST_BODY_BYTES: no body is buffered without a limit; streamed uploads keep the plan's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.assertions import assert_error, assert_invalid, assert_licensing_error
from tests.fixtures.auth import Account, Api

MIB = 1024 * 1024
CAP = MIB  # the default
TOO_LARGE = f"The request body is larger than the {CAP} bytes this endpoint accepts."
CHUNK = 64 * 1024


class Body:
    """A request body produced on demand, counting what the server pulled from it."""

    def __init__(self, size: int, fill: bytes = b" ") -> None:
        self.size = size
        self.fill = fill
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            chunk = self.fill * min(CHUNK, self.size - self.pulled)
            self.pulled += len(chunk)
            yield chunk


@pytest.fixture
async def owner(api: Api) -> Account:
    return await api.register("big-bodies@example.com")


LICENSING_PUBLIC = ["/api/v1/auth/token/", "/api/v1/auth/register/", "/api/v1/licenses/validate/"]


@pytest.mark.parametrize("path", [*LICENSING_PUBLIC, "/api/v1/webhooks/stripe/"])
async def test_a_20_mb_body_is_refused_before_it_is_read(client: httpx.AsyncClient, path: str) -> None:
    body = Body(20 * MIB)
    response = await client.post(
        path,
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(body.size), "Stripe-Signature": "t=1,v1=0"},
    )
    assert_licensing_error(response, 413, "Payload too large", TOO_LARGE)
    assert body.pulled == 0  # refused from Content-Length alone: not one byte was read


@pytest.mark.parametrize("path", [*LICENSING_PUBLIC, "/api/v1/webhooks/stripe/"])
async def test_a_chunked_body_is_cut_off_where_it_crosses_the_cap(client: httpx.AsyncClient, path: str) -> None:
    body = Body(20 * MIB)  # no Content-Length: sent chunked
    response = await client.post(
        path, content=body, headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=0"}
    )
    assert "content-length" not in response.request.headers
    assert_licensing_error(response, 413, "Payload too large", TOO_LARGE)
    assert CAP < body.pulled <= CAP + CHUNK  # read up to the cap, not one chunk further


async def test_a_platform_json_route_answers_in_its_own_shape(client: httpx.AsyncClient, owner: Account) -> None:
    declared = await client.post(
        "/v1/api-keys",
        content=b"{" + b" " * (2 * MIB) + b"}",
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert_error(declared, 413, "PAYLOAD_TOO_LARGE", TOO_LARGE, {"max_bytes": CAP})
    chunked = await client.post("/v1/auth/login", content=Body(2 * MIB), headers={"Content-Type": "application/json"})
    assert_error(chunked, 413, "PAYLOAD_TOO_LARGE", TOO_LARGE, {"max_bytes": CAP})


async def test_a_body_at_the_cap_is_still_read(client: httpx.AsyncClient) -> None:
    padded = b'{"key_string": "nope"}'.ljust(CAP, b" ")
    response = await client.post(
        "/api/v1/licenses/validate/", content=padded, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["valid"] is False


async def test_the_cap_is_a_setting(settings: Any) -> None:
    from backplane.app import create_app

    application = create_app(settings.model_copy(update={"max_request_body_bytes": 100}))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        response = await http.post("/api/v1/auth/token/", json={"email": "a@example.com", "password": "x" * 100})
        assert_licensing_error(
            response, 413, "Payload too large", "The request body is larger than the 100 bytes this endpoint accepts."
        )
        small = await http.post("/api/v1/auth/token/", json={"email": "a@example.com", "password": "x"})
        assert small.status_code == 401


# Streamed uploads keep their own (plan) limits.

BIG_TEXT = b"A plain text line that is long enough to be read as text.\n" * (2 * MIB // 58)


async def test_a_direct_upload_above_the_cap_is_streamed_under_the_plan_limit(
    client: httpx.AsyncClient, owner: Account
) -> None:
    assert len(BIG_TEXT) > CAP
    response = await client.post(
        "/v1/files", files={"file": ("big.txt", BIG_TEXT, "text/plain")}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == len(BIG_TEXT)


async def test_a_signed_upload_above_the_cap_is_streamed(client: httpx.AsyncClient, owner: Account) -> None:
    created = await client.post(
        "/v1/files/upload-url",
        json={"filename": "big.txt", "content_type": "text/plain", "size_bytes": len(BIG_TEXT)},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    url = created.json()["upload_url"].replace("http://testserver", "")
    put = await client.put(url, content=BIG_TEXT, headers={"Content-Type": "text/plain"})
    assert put.status_code == 200, put.text


async def test_multipart_jobs_are_streamed_but_json_jobs_are_capped(client: httpx.AsyncClient, owner: Account) -> None:
    multipart = await client.post(
        "/v1/jobs",
        data={"agent_id": "maya", "config": '{"output_formats": ["twitter_thread"]}'},
        files=[("files", ("big.txt", BIG_TEXT, "text/plain"))],
        headers=owner.headers,
    )
    assert multipart.status_code == 201, multipart.text
    padded = b'{"agent_id": "maya"}'.ljust(2 * MIB, b" ")
    as_json = await client.post(
        "/v1/jobs", content=padded, headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert_error(as_json, 413, "PAYLOAD_TOO_LARGE", TOO_LARGE, {"max_bytes": CAP})
    # The upload routes' exemption is for their streamed media types only: a JSON body sent to the
    # upload route is capped when read (here by the Idempotency-Key check, which hashes it).
    body = Body(2 * MIB)
    disguised = await client.post(
        "/v1/files",
        content=body,
        headers={
            **owner.headers,
            "Content-Type": "application/json",
            "Content-Length": str(body.size),
            "Idempotency-Key": "disguised-1",
        },
    )
    assert_error(disguised, 413, "PAYLOAD_TOO_LARGE", TOO_LARGE, {"max_bytes": CAP})
    assert body.pulled == 0


# Multipart forms: a bounded number of parts, each text field bounded.


async def test_a_form_with_too_many_parts_is_refused(client: httpx.AsyncClient, owner: Account) -> None:
    fields = {f"field{i}": "x" for i in range(40)}
    response = await client.post(
        "/v1/files",
        data=fields,
        files={"file": ("a.txt", b"hello, this is a text file\n" * 10, "text/plain")},
        headers=owner.headers,
    )
    assert_invalid(response, {"non_field_errors": ["At most 16 form fields per request."]})


async def test_a_form_text_field_is_bounded(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "maya", "input_data": "x" * (64 * 1024 + 1)},
        files=[("files", ("a.txt", b"hello, this is a text file\n" * 10, "text/plain"))],
        headers=owner.headers,
    )
    assert_invalid(response, {"input_data": ["At most 65536 bytes."]})
