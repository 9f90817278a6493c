"""The guide's flows with the product agents, through the job API and a real worker."""

from __future__ import annotations

import httpx

from tests.agents import samples
from tests.fixtures.assertions import assert_error, assert_not_found
from tests.fixtures.auth import Account
from tests.jobs.conftest import JobsWorker, wait_for


async def test_agents_are_listed_with_their_schemas(client: httpx.AsyncClient, owner: Account) -> None:
    listed = await client.get("/v1/agents", headers=owner.headers)
    assert listed.status_code == 200
    ids = [a["id"] for a in listed.json()]
    assert {"maya", "jordan", "sam", "taylor"} <= set(ids)
    taylor = next(a for a in listed.json() if a["id"] == "taylor")
    assert taylor["accepted_file_types"] == ["bmp", "jpg", "pdf", "png", "tiff"]
    assert taylor["max_file_bytes"] == 100 * 1024 * 1024
    config = await client.get("/v1/agents/maya/config", headers=owner.headers)
    assert config.status_code == 200
    body = config.json()
    assert "target_formats" in body["input_schema"]["properties"]
    assert body["time_limit_seconds"] == 600
    assert_not_found(await client.get("/v1/agents/nobody/config", headers=owner.headers), "No agent with this id.")
    anonymous = await client.get("/v1/agents")
    assert anonymous.status_code == 401


async def test_taylor_reads_an_invoice_uploaded_with_the_job(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    # The guide's cURL: -F agent_id=taylor -F config={"extraction_type":"form_data"} -F files=@invoice.pdf
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor", "config": '{"extraction_type":"form_data"}'},
        files=[("files", ("invoice.pdf", samples.invoice_pdf(), "application/pdf"))],
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    done = await wait_for(client, owner, response.json()["id"], seconds=60)
    assert done["status"] == "completed", done
    output = (await client.get(f"/v1/jobs/{done['id']}/output", headers=owner.headers)).json()["content"]
    data = output["extracted_data"]
    assert data["invoice_number"] == samples.INVOICE_NUMBER
    assert data["vendor"] == samples.VENDOR
    assert data["total"] == samples.TOTAL
    assert output["pages_processed"] == 1
    assert output["confidence"] > 0.9


async def test_maya_turns_text_into_a_thread(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    content = (
        "Remote teams ship faster when they write things down. Written decisions survive time zones. "
        "A short weekly memo replaces three meetings. Documentation is a gift to your future colleagues. "
        "Start with one page and keep it current."
    )
    response = await client.post(
        "/v1/jobs",
        json={
            "agent_id": "maya",
            "input_data": {
                "source_type": "text",
                "content": content,
                "target_formats": ["twitter_thread", "linkedin_post"],
                "include_hashtags": True,
                "max_length": 120,
            },
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    done = await wait_for(client, owner, response.json()["id"], seconds=60)
    assert done["status"] == "completed", done
    posts = done["output_data"]["twitter_thread"]["posts"]
    assert len(posts) >= 2
    assert all(p["char_count"] == len(p["text"]) <= 120 for p in posts)
    assert posts[0]["text"].startswith("1/")
    assert done["output_data"]["linkedin_post"]["estimated_read_time"].endswith("min")


async def test_a_job_whose_agent_rejects_its_input_says_why(client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/v1/jobs",
        json={"agent_id": "sam", "input_data": {"business_name": "Joe's Coffee"}},
        headers=owner.headers,
    )
    assert response.status_code == 422
    fields = response.json()["error"]["details"]["fields"]
    assert fields == {"input_data.location": ["This field is required."]}
    # The website is required by the audit (not by review_responses): refused once the schema is met.
    response = await client.post(
        "/v1/jobs",
        json={"agent_id": "sam", "input_data": {"business_name": "Joe's Coffee", "location": "Seattle, WA"}},
        headers=owner.headers,
    )
    assert response.json()["error"]["details"]["fields"] == {"input_data.website": ["website is required for audit."]}


async def test_an_agent_fetch_of_a_private_address_fails_the_job_without_retries(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    # The job settings allow private targets only when WEBHOOK_ALLOW_PRIVATE_TARGETS is set; it is not here.
    response = await client.post(
        "/v1/jobs",
        json={"agent_id": "maya", "input_data": {"source_type": "url", "url": "http://169.254.169.254/latest/"}},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    done = await wait_for(client, owner, response.json()["id"], seconds=30)
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"]["code"] == "INVALID_INPUT"
    assert "private, loopback or link-local" in done["error"]["message"]
    output = await client.get(f"/v1/jobs/{done['id']}/output", headers=owner.headers)
    assert_error(
        output,
        409,
        "JOB_NOT_COMPLETED",
        "The job is failed; its output exists once it is completed.",
        {"status": "failed"},
    )
