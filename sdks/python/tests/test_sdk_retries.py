"""Retries, backoff, `Retry-After` and `Idempotency-Key`, against a real HTTP server on loopback that
answers what the service answers under load or in a fault (429 with its headers, 5xx), since the real
service cannot be made to fail on cue. The real service's replay of a repeated key is tested in
test_sdk_platform.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.fixtures.http_server import serve
from tests.fixtures.net import refused_port

from coexai import (
    APIConnectionError,
    AsyncCoExAI,
    CoExAI,
    InternalServerError,
    RateLimitError,
)

JOB = {
    "id": "job_1",
    "agent_id": "test-noop",
    "status": "queued",
    "priority": 0,
    "input_data": {},
    "config": {},
    "file_ids": [],
    "output_data": None,
    "error": None,
    "attempts": 0,
    "livemode": True,
    "created_at": "2026-01-15T10:30:00Z",
    "queued_at": None,
    "started_at": None,
    "finished_at": None,
}


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": f"{code} happened", "details": {"limit": 60}, "request_id": "req_x1"}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class Script:
    """What the stand-in answers, in order; every request's method, headers and arrival time is kept."""

    answers: list[Response] = field(default_factory=list)
    seen: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        await request.body()
        self.seen.append((request.method, dict(request.headers), time.monotonic()))
        return self.answers.pop(0) if self.answers else JSONResponse(JOB, status_code=201)


@pytest.fixture
def stand_in() -> Iterator[tuple[Script, str]]:
    script = Script()
    routes = [Route("/v1/jobs", script.handle, methods=["POST"]), Route("/v1/jobs/{job_id}", script.handle)]
    with serve(Starlette(routes=routes), name="sdk-stand-in") as server:
        yield script, server.url


def test_a_post_retried_after_5xx_sends_the_same_idempotency_key_each_time(stand_in: tuple[Script, str]) -> None:
    script, url = stand_in
    script.answers = [_error(503, "SERVICE_UNAVAILABLE"), _error(500, "INTERNAL_ERROR")]
    with CoExAI(api_key="coexai_test_k", base_url=url) as coexai:
        job = coexai.jobs.create(agent_id="test-noop")
    assert job.id == "job_1" and len(script.seen) == 3
    keys = {headers["idempotency-key"] for _, headers, _ in script.seen}
    assert len(keys) == 1 and keys != {""}
    assert all(headers["authorization"] == "Bearer coexai_test_k" for _, headers, _ in script.seen)
    # A second call is a new request: a new key.
    with CoExAI(api_key="coexai_test_k", base_url=url) as coexai:
        coexai.jobs.create(agent_id="test-noop", idempotency_key="mine")
    assert script.seen[-1][1]["idempotency-key"] == "mine"


def test_a_429_is_retried_after_retry_after(stand_in: tuple[Script, str]) -> None:
    script, url = stand_in
    headers = {"Retry-After": "1", "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0"}
    script.answers = [_error(429, "RATE_LIMIT_EXCEEDED", headers)]
    with CoExAI(api_key="k", base_url=url) as coexai:
        assert coexai.jobs.get("job_1").id == "job_1"
    assert [m for m, _, _ in script.seen] == ["GET", "GET"]
    assert script.seen[1][2] - script.seen[0][2] >= 1.0


def test_a_monthly_quota_is_not_retried_and_the_error_says_why(stand_in: tuple[Script, str]) -> None:
    script, url = stand_in
    script.answers = [_error(429, "QUOTA_EXCEEDED", {"Retry-After": "1"})]
    with CoExAI(api_key="k", base_url=url) as coexai, pytest.raises(RateLimitError) as caught:
        coexai.jobs.create(agent_id="maya")
    error = caught.value
    assert (error.status_code, error.code, error.request_id) == (429, "QUOTA_EXCEEDED", "req_x1")
    assert error.details == {"limit": 60} and error.retry_after == 1.0 and len(script.seen) == 1


def test_retries_end_with_the_last_error(stand_in: tuple[Script, str]) -> None:
    script, url = stand_in
    script.answers = [_error(502, "BAD_GATEWAY") for _ in range(3)]
    with CoExAI(api_key="k", base_url=url, max_retries=2) as coexai, pytest.raises(InternalServerError) as caught:
        coexai.jobs.get("job_1")
    assert caught.value.code == "BAD_GATEWAY" and caught.value.status_code == 502 and len(script.seen) == 3


async def test_the_async_client_retries_the_same_way(stand_in: tuple[Script, str]) -> None:
    script, url = stand_in
    script.answers = [_error(503, "SERVICE_UNAVAILABLE"), _error(429, "RATE_LIMIT_EXCEEDED", {"Retry-After": "0"})]
    async with AsyncCoExAI(api_key="k", base_url=url) as coexai:
        job = await coexai.jobs.create(agent_id="test-noop", input_data={"a": 1})
    assert job.status == "queued" and len(script.seen) == 3
    assert len({headers["idempotency-key"] for _, headers, _ in script.seen}) == 1


def test_an_unreachable_service_is_a_connection_error_after_the_retries() -> None:
    with (
        refused_port() as port,
        CoExAI(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=1) as coexai,
        pytest.raises(APIConnectionError) as caught,
    ):
        coexai.users.me()
    assert caught.value.code == "CONNECTION_ERROR" and caught.value.status_code is None
