"""A file built to exhaust a parser costs its own job one attempt, never the worker.

Parsers run in a child process with CPU-time and memory limits (agents/sandbox.py); the limits are
shrunk here so each bomb is stopped in seconds. After every bomb the same worker reads a real
invoice, so a killed parser leaves the worker serving.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from backplane.agents import sandbox
from backplane.agents.diagnostic import StuckParserAgent
from backplane.core.config import Settings
from tests.agents import samples
from tests.fixtures.assertions import assert_invalid
from tests.fixtures.auth import Account
from tests.jobs import hostile_files
from tests.jobs.conftest import JobsWorker, until, wait_for

CPU_SECONDS = 3
MEMORY_MB = 768


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shrunk limits; a test about the memory limit gives the parser more CPU time (`memory_bound`), so
    that on a busy machine the CPU limit does not stop the bomb first."""
    cpu_seconds = 10 * CPU_SECONDS if request.node.get_closest_marker("memory_bound") else CPU_SECONDS
    return settings.model_copy(update={"agent_parser_cpu_seconds": cpu_seconds, "agent_parser_memory_mb": MEMORY_MB})


async def _upload_job(
    client: httpx.AsyncClient, owner: Account, agent_id: str, name: str, data: bytes, content_type: str, **form: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": agent_id, **form},
        files=[("files", (name, data, content_type))],
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    return await wait_for(client, owner, response.json()["id"], seconds=60)


async def _assert_worker_still_serves(client: httpx.AsyncClient, owner: Account) -> None:
    invoice = samples.invoice_pdf()
    config = '{"extraction_type": "invoice"}'
    done = await _upload_job(client, owner, "taylor", "invoice.pdf", invoice, "application/pdf", config=config)
    assert done["status"] == "completed", done
    assert done["output_data"]["extracted_data"]["invoice_number"] == samples.INVOICE_NUMBER
    assert not sandbox.live_children()


def _assert_failed_once(job: dict[str, Any], code: str, message: str) -> None:
    assert job["status"] == "failed", job
    assert job["attempts"] == 1
    assert job["error"] == {"code": code, "message": message, "attempt": 1}


async def test_a_decompression_bomb_png_is_refused_at_creation_from_its_header(
    client: httpx.AsyncClient, owner: Account
) -> None:
    # 121 megapixels: over the agents' 60 megapixel limit, under Pillow's own default (179) that
    # would otherwise let it be decoded whole first. Its header says so: no job is made. (The run's
    # own guard, for a file that passed, is tested in tests/agents/test_taylor_inputs.py.)
    bomb = hostile_files.blank_png(11_000, 11_000)
    assert len(bomb) < 100_000

    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor"},
        files=[("files", ("bomb.png", bomb, "image/png"))],
        headers=owner.headers,
    )

    assert_invalid(response, {"file_ids.0": ["bomb.png: The image has more than 60,000,000 pixels; it is refused."]})


async def test_a_pdf_with_a_huge_page_tree_is_stopped_at_the_cpu_limit(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    bomb = hostile_files.page_tree_pdf()

    job = await _upload_job(client, owner, "taylor", "tree.pdf", bomb, "application/pdf")

    _assert_failed_once(
        job, "INVALID_INPUT", f"tree.pdf took more than {CPU_SECONDS} s of CPU time to read; it is refused."
    )
    await _assert_worker_still_serves(client, owner)


@pytest.mark.memory_bound
async def test_a_docx_zip_bomb_is_stopped_at_the_memory_limit(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    bomb = hostile_files.paragraph_bomb_docx()
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

    job = await _upload_job(client, owner, "maya", "bomb.docx", bomb, docx_type, input_data='{"source_type": "file"}')

    _assert_failed_once(
        job, "INVALID_INPUT", f"bomb.docx needs more than {MEMORY_MB} MB of memory to read; it is refused."
    )
    await _assert_worker_still_serves(client, owner)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _running_parser() -> int:
    async def started() -> bool:
        return bool(sandbox.live_children())

    await until(started)
    (pid,) = sandbox.live_children()
    assert not _gone(pid)
    return pid


async def _until_gone(pid: int) -> None:
    async def gone() -> bool:
        return _gone(pid)

    await until(gone)


async def test_an_agent_time_out_is_final_and_kills_its_parser(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StuckParserAgent, "time_limit_seconds", 1.0)
    response = await client.post(
        "/v1/jobs", json={"agent_id": "test-stuck-parser", "input_data": {"seconds": 3600}}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    pid = await _running_parser()

    job = await wait_for(client, owner, response.json()["id"], seconds=30)

    # Another attempt would meet the same input and the same limit: the time-out is not retried.
    _assert_failed_once(job, "TIMEOUT", "The agent did not finish within its 1 s time limit.")
    await _until_gone(pid)
    assert not sandbox.live_children()
    await _assert_worker_still_serves(client, owner)


async def test_a_cancelled_jobs_parser_is_killed(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    response = await client.post(
        "/v1/jobs", json={"agent_id": "test-stuck-parser", "input_data": {"seconds": 3600}}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    pid = await _running_parser()

    cancelled = await client.post(f"/v1/jobs/{job_id}/cancel", headers=owner.headers)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await _until_gone(pid)
    assert not sandbox.live_children()
    await _assert_worker_still_serves(client, owner)
