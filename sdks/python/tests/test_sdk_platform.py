"""`CoExAI` and `AsyncCoExAI` against real `backplane serve` and `backplane worker` processes, and the
platform guide's Python snippet (examples/platform_guide.py) run as a program."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fpdf import FPDF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from tests.fixtures.http_server import LoopbackServer, serve

from coexai import (
    AsyncCoExAI,
    AuthenticationError,
    CoExAI,
    CoExAIError,
    ConflictError,
    NotFoundError,
    ValidationError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from conftest import EXAMPLES, Account, sign_up

pytestmark = pytest.mark.e2e


def _pdf(path: Path, text: str) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


@pytest.fixture
def coexai(base_url: str, account: Account) -> Iterator[CoExAI]:
    with CoExAI(api_key=account.api_key, base_url=base_url) as client:
        yield client


def test_the_guides_python_snippet_runs_as_printed(base_url: str, account: Account, tmp_path: Path) -> None:
    _pdf(tmp_path / "document.pdf", "Invoice INV-2024-001 from Acme Corp. Total: 100.00")
    _pdf(tmp_path / "doc1.pdf", "First document: quarterly report for the board.")
    _pdf(tmp_path / "doc2.pdf", "Second document: meeting notes of 15 January 2024.")
    env = {**os.environ, "COEXAI_API_KEY": account.api_key, "COEXAI_BASE_URL": base_url}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "platform_guide.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first, *batch = done.stdout.strip().splitlines()
    assert "INV-2024-001" in first  # `print(result.content)`: the OCR'd text of document.pdf
    assert len(batch) == 2
    assert all(" completed " in line for line in batch), batch
    assert "quarterly report" in batch[0] + batch[1] and "meeting notes" in batch[0] + batch[1]
    with CoExAI(api_key=account.api_key, base_url=base_url) as coexai:
        jobs = list(coexai.jobs.list(agent_id="taylor"))
        assert len(jobs) == 3 and all(len(job.file_ids) == 1 for job in jobs)
        assert {f.filename for f in coexai.files.list()} == {"document.pdf", "doc1.pdf", "doc2.pdf"}


def test_jobs_create_wait_output_list_cancel_retry(coexai: CoExAI) -> None:
    job = coexai.jobs.create(agent_id="test-noop", input_data={"echo": "hi"}, config={}, priority=1)
    assert job.id.startswith("job_") and job.agent_id == "test-noop" and job.priority == 1
    done = coexai.jobs.wait_for_completion(job.id, timeout=30)
    assert done.status == "completed" and done.is_final and done.finished_at is not None
    assert done.output_data == {"echo": "hi", "files": []}
    output = coexai.jobs.get_output(job.id)
    assert (output.content, output.format, output.job_id) == ({"echo": "hi", "files": []}, "json", job.id)
    assert coexai.jobs.get(job.id).status == "completed"
    assert [t.to_status for t in coexai.jobs.history(job.id)][-1] == "completed"

    # The free plan runs one job at a time: a long one holds the slot, the next waits queued.
    sleeper = coexai.jobs.create(agent_id="test-sleep", input_data={"seconds": 30})
    queued = coexai.jobs.create(agent_id="test-noop")
    with pytest.raises(WaitTimeoutError):
        coexai.jobs.wait_for_completion(queued.id, timeout=0.5, poll_interval=0.1)
    with pytest.raises(ConflictError) as caught:
        coexai.jobs.get_output(queued.id, wait=0)
    assert caught.value.code == "JOB_NOT_COMPLETED" and str(caught.value.request_id).startswith("req_")
    assert coexai.jobs.cancel(queued.id).status == "cancelled"
    assert coexai.jobs.cancel(sleeper.id).status == "cancelled"

    failing = coexai.jobs.create(agent_id="test-fail")
    failed = coexai.jobs.wait_for_completion(failing.id, timeout=60)
    assert failed.status == "dead_letter" and failed.error is not None and failed.error.code
    assert coexai.jobs.retry(failing.id).status in {"queued", "processing"}

    # Auto-pagination: a page of one job at a time still yields all of them, newest first.
    listed = [j.id for j in coexai.jobs.list(limit=1)]
    assert listed == [failing.id, queued.id, sleeper.id, job.id]
    assert [j.id for j in coexai.jobs.list(status="cancelled", limit=1)] == [queued.id, sleeper.id]
    hour_ago, later = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    assert len(list(coexai.jobs.list(created_after=hour_ago))) == 4
    assert list(coexai.jobs.list(created_after=later)) == []


def test_a_batch_is_refused_whole_before_anything_is_sent_or_created(coexai: CoExAI, tmp_path: Path) -> None:
    with pytest.raises(CoExAIError) as unknown:
        coexai.jobs.create_batch([{"agent_id": "test-noop", "inputs": {}}])
    assert unknown.value.code == "INVALID_ARGUMENT" and unknown.value.status_code is None
    with pytest.raises(FileNotFoundError):
        coexai.jobs.create_batch([{"agent_id": "test-noop", "file": tmp_path / "missing.pdf"}])
    with pytest.raises(ValidationError) as invalid:  # the service checks the batch as a whole
        coexai.jobs.create_batch([{"agent_id": "test-noop"}, {"agent_id": "no-such-agent"}])
    assert "jobs.1" in str(invalid.value.details)
    assert list(coexai.jobs.list()) == []


def test_the_same_idempotency_key_gives_the_same_job(coexai: CoExAI) -> None:
    first = coexai.jobs.create(agent_id="test-noop", input_data={"n": 1}, idempotency_key="order-42")
    again = coexai.jobs.create(agent_id="test-noop", input_data={"n": 1}, idempotency_key="order-42")
    assert again.id == first.id
    assert [j.id for j in coexai.jobs.list()] == [first.id]


def test_errors_carry_the_services_code_message_details_and_request_id(base_url: str, coexai: CoExAI) -> None:
    with pytest.raises(NotFoundError) as missing:
        coexai.jobs.get("job_doesnotexist")
    assert missing.value.status_code == 404 and missing.value.code == "NOT_FOUND"
    assert missing.value.request_id and missing.value.request_id.startswith("req_")
    with pytest.raises(ValidationError) as invalid:
        coexai.jobs.create(agent_id="maya", input_data={"source_type": "nonsense"})
    assert invalid.value.status_code == 422 and invalid.value.code == "VALIDATION_ERROR"
    assert invalid.value.details and invalid.value.message
    with CoExAI(api_key="coexai_live_" + "x" * 40, base_url=base_url) as stranger, pytest.raises(AuthenticationError):
        stranger.users.me()
    # Another organization's job is not found, not forbidden.
    other = CoExAI(api_key=sign_up(base_url).api_key, base_url=base_url)
    job = other.jobs.create(agent_id="test-noop")
    with pytest.raises(NotFoundError):
        coexai.jobs.get(job.id)
    other.close()


def test_files_agents_keys_organizations_and_me(coexai: CoExAI, account: Account, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello from the sdk")
    uploaded = coexai.files.upload(note, metadata={"source": "user_upload"})
    assert uploaded.id.startswith("file_") and uploaded.filename == "note.txt" and uploaded.size_bytes == 18
    assert uploaded.metadata == {"source": "user_upload"}
    assert coexai.files.get(uploaded.id).sha256 == uploaded.sha256
    assert coexai.files.download(uploaded.id) == b"hello from the sdk"
    large = coexai.files.upload_large(("big.txt", b"x" * 5000, "text/plain"))  # the three-step upload
    assert large.status in {"ready", "uploaded", "available"} and large.size_bytes == 5000, large
    assert coexai.files.download(large.id) == b"x" * 5000
    assert {f.id for f in coexai.files.list(limit=1)} == {uploaded.id, large.id}  # one page at a time
    coexai.files.delete(large.id)
    with pytest.raises(NotFoundError):
        coexai.files.get(large.id)
    job = coexai.jobs.create(agent_id="test-noop", file_ids=[uploaded.id])
    assert coexai.jobs.wait_for_completion(job.id, timeout=30).file_ids == [uploaded.id]
    with_path = coexai.jobs.create(agent_id="test-noop", files=[str(note)], file_ids=[uploaded.id])
    assert len(with_path.file_ids) == 2 and uploaded.id in with_path.file_ids

    agents = {a.id: a for a in coexai.agents.list()}
    assert {"maya", "jordan", "sam", "taylor"} <= set(agents)
    config = coexai.agents.get_config("taylor")
    assert config.accepted_file_types and config.input_schema

    me = coexai.users.me()
    assert me.user is not None and me.user.email == account.email and me.auth["type"] == "api_key"
    created = coexai.api_keys.create(name="second", scopes=["read"])
    assert created.key and created.key.startswith("coexai_live_") and created.scopes == ["read"]
    assert {k.name for k in coexai.api_keys.list()} == {"sdk", "second"}
    assert coexai.api_keys.revoke(created.id).revoked_at is not None
    [organization] = list(coexai.organizations.list())
    assert organization.id == account.organization_id and organization.role == "owner"
    assert coexai.organizations.get(organization.id).name == "SDK Co"
    assert [m.email for m in coexai.organizations.members(organization.id)] == [account.email]


class _Receiver:
    """A customer's webhook endpoint: keeps each request's raw body and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = threading.Event()

    async def handle(self, request: Request) -> Response:
        self.requests.append((await request.body(), dict(request.headers)))
        self.arrived.set()
        return PlainTextResponse("OK")


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, LoopbackServer]]:
    endpoint = _Receiver()
    with serve(Starlette(routes=[Route("/hook", endpoint.handle, methods=["POST"])]), name="sdk-webhook") as server:
        yield endpoint, server


def test_webhooks_crud_and_verifying_a_real_delivery_in_both_schemes(
    coexai: CoExAI, receiver: tuple[_Receiver, LoopbackServer]
) -> None:
    endpoint, server = receiver
    hook = coexai.webhooks.create(url=f"{server.url}/hook", events=["job.completed"], description="sdk")
    assert hook.id.startswith("wh_") and hook.secret and hook.secret.startswith("whsec_")
    assert coexai.webhooks.get(hook.id).secret is None
    assert [h.id for h in coexai.webhooks.list()] == [hook.id]
    assert coexai.webhooks.update(hook.id, description="renamed").description == "renamed"

    job = coexai.jobs.create(agent_id="test-noop", input_data={"echo": "webhook"})
    assert endpoint.arrived.wait(30), "no delivery arrived"
    body, headers = endpoint.requests[0]
    secret = hook.secret

    event = coexai.webhooks.construct_event(body, headers, secret)
    assert event.type == "job.completed" and event.data["id"] == job.id and event.id.startswith("evt_")
    assert coexai.webhooks.verify(body, headers, secret)
    # Only the guide's header (a receiver's proxy dropped the others): checked by X-CoExAI-Signature.
    guide_only = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    assert coexai.webhooks.verify(body, guide_only, secret)
    assert coexai.webhooks.verify(body.decode(), guide_only, secret)
    # Forged or replayed: refused.
    assert not coexai.webhooks.verify(body.replace(b"webhook", b"forged!"), headers, secret)
    assert not coexai.webhooks.verify(body.replace(b"webhook", b"forged!"), guide_only, secret)
    assert not coexai.webhooks.verify(body, headers, "whsec_" + "A" * 32)
    assert not coexai.webhooks.verify(body, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}, secret)
    assert not coexai.webhooks.verify(body, {}, secret)
    with pytest.raises(WebhookVerificationError):
        coexai.webhooks.construct_event(body.replace(b"webhook", b"forged!"), headers, secret)

    # After a rotation both secrets verify for a while: the old one through its own `v1,` signature
    # and through X-CoExAI-Signature-Previous.
    rotated = coexai.webhooks.rotate_secret(hook.id)["secret"]
    seen = len(endpoint.requests)
    coexai.webhooks.test(hook.id)
    deadline = time.monotonic() + 30
    while len(endpoint.requests) == seen:
        assert time.monotonic() < deadline, "the test delivery never arrived"
        time.sleep(0.05)
    body, headers = endpoint.requests[-1]
    guide_only = {k: v for k, v in headers.items() if not k.startswith("webhook-")}
    for key in (rotated, secret):
        assert coexai.webhooks.verify(body, headers, key) and coexai.webhooks.verify(body, guide_only, key)
    assert coexai.webhooks.construct_event(body, headers, rotated).type == "webhook.test"

    [stored] = list(coexai.events.list(type="job.completed"))
    assert stored.id == event.id and coexai.events.get(stored.id).data["id"] == job.id
    deliveries = list(coexai.webhooks.deliveries(hook.id))
    assert event.id in {d.event_id for d in deliveries} and {d.kind for d in deliveries} >= {"test"}
    coexai.webhooks.delete(hook.id)
    with pytest.raises(NotFoundError):
        coexai.webhooks.get(hook.id)


async def test_the_async_client_batch_with_files_gather_and_async_listing(
    base_url: str, account: Account, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    async with AsyncCoExAI(api_key=account.api_key, base_url=base_url) as coexai:
        jobs = await coexai.jobs.create_batch(
            [
                {"agent_id": "test-noop", "input_data": {"echo": 1}, "file": tmp_path / "a.txt"},
                {"agent_id": "test-noop", "input_data": {"echo": 2}, "files": [("b.txt", b"beta")]},
                {"agent_id": "test-noop", "input_data": {"echo": 3}},
            ]
        )
        assert len(jobs) == 3 and [len(j.file_ids) for j in jobs] == [1, 1, 0]
        done = await asyncio.gather(*[coexai.jobs.wait_for_completion(job.id, timeout=60) for job in jobs])
        assert [j.output_data["echo"] for j in done if j.output_data] == [1, 2, 3]
        listed = [job.id async for job in coexai.jobs.list(limit=2)]
        assert sorted(listed) == sorted(j.id for j in jobs)
        assert (await coexai.jobs.get_output(jobs[0].id)).content["echo"] == 1
        assert (await coexai.users.me()).user is not None
        with pytest.raises(NotFoundError):
            await coexai.jobs.get("job_missing")
