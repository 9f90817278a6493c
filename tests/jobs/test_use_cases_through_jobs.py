"""Jordan's and sam's use cases through the job API and a real worker: created, refused at creation naming the
field, run, and downloaded as their reports; the OpenAPI document carries an example request for each."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from lxml import html as lxml_html
from pypdf import PdfReader

from backplane.agents.examples import USE_CASES
from backplane.core.config import Settings
from tests.agents.test_jordan_usecases import METRICS
from tests.agents.test_sam_usecases import OWN, RIVAL
from tests.fixtures.assertions import assert_invalid
from tests.fixtures.auth import Account
from tests.fixtures.http_server import serve
from tests.jobs.conftest import JobsWorker, wait_for


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True})  # the sites run on loopback


@pytest.fixture
def sites() -> Iterator[str]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    pages = {"/": OWN, "/rival": RIVAL}

    async def page(request: Request) -> Response:
        return HTMLResponse(pages.get(request.url.path, "<h1>gone</h1>"))

    with serve(Starlette(routes=[Route("/{path:path}", page)]), name="competitor-sites") as server:
        yield server.url


async def test_openapi_has_an_example_per_use_case_and_each_is_accepted(
    client: httpx.AsyncClient, owner: Account
) -> None:
    spec = (await client.get("/openapi.json")).json()
    examples = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(USE_CASES)
    actions = {(e["value"]["agent_id"], e["value"]["input_data"].get("action")) for e in examples.values()}
    for use_case in ("profile_optimization", "engagement_analytics", "dm_campaign", "content_calendar"):
        assert ("jordan", use_case) in actions
    for use_case in ("audit", "competitor_analysis", "review_responses"):
        assert ("sam", use_case) in actions
    maya_formats = {
        f
        for e in examples.values()
        if e["value"]["agent_id"] == "maya"
        for f in e["value"]["input_data"]["target_formats"]
    }
    assert {"twitter_thread", "newsletter", "linkedin_article", "content_calendar"} <= maya_formats
    for name, example in examples.items():
        if example["value"].get("file_ids"):
            continue  # names a file of the example's organization, not of this one
        created = await client.post("/v1/jobs", json=example["value"], headers=owner.headers)
        assert created.status_code == 201, (name, created.text)


async def test_engagement_analytics_from_an_uploaded_csv(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "jordan", "input_data": '{"action": "engagement_analytics"}'},
        files=[("files", ("metrics.csv", METRICS.encode(), "text/csv"))],
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    job = await wait_for(client, owner, response.json()["id"], seconds=60)
    assert job["status"] == "completed", job
    result = job["output_data"]
    assert result["best_days"][0]["day"] == "Wednesday" and result["topics"][0]["topic"] == "kubernetes"
    report = await client.get(f"/v1/jobs/{job['id']}/output", params={"format": "report"}, headers=owner.headers)
    assert report.status_code == 200 and report.headers["content-type"] == "text/html; charset=utf-8"
    document = lxml_html.fromstring(report.content)
    [table] = document.xpath("//table[@id='formats']")
    assert [td.text_content() for td in table.xpath("tbody/tr/td[1]")] == [f["format"] for f in result["formats"]]


async def test_use_cases_refused_at_creation_name_the_field(client: httpx.AsyncClient, owner: Account) -> None:
    def post(input_data: dict[str, object], agent_id: str = "jordan") -> object:
        return client.post("/v1/jobs", json={"agent_id": agent_id, "input_data": input_data}, headers=owner.headers)

    assert_invalid(
        await post({"action": "engagement_analytics", "content": "\n"}),  # type: ignore[arg-type]
        {"input_data.content": ["The CSV is empty: export your post metrics with a header row and one row per post."]},
    )
    assert_invalid(
        await post({"action": "dm_campaign"}),  # type: ignore[arg-type]
        {"input_data.content_topic": ["content_topic is required for dm_campaign."]},
    )
    sam = {"business_name": "Joe's", "location": "Seattle, WA"}
    assert_invalid(
        await post(sam | {"action": "competitor_analysis", "website": "https://a.example"}, "sam"),  # type: ignore[arg-type]
        {"input_data.competitors": ["competitor_analysis needs at least one competitor's URL."]},
    )
    assert_invalid(
        await post(sam, "sam"),  # type: ignore[arg-type]
        {"input_data.website": ["website is required for audit."]},
    )


async def test_competitor_analysis_and_review_responses_as_pdf(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker, sites: str
) -> None:
    sam = {"business_name": "Joe's Coffee Shop", "location": "Seattle, WA", "primary_keywords": ["espresso"]}
    created = await client.post(
        "/v1/jobs",
        json={
            "agent_id": "sam",
            "input_data": sam
            | {"action": "competitor_analysis", "website": f"{sites}/", "competitors": [f"{sites}/rival"]},
        },
        headers=owner.headers,
    )
    reviews = await client.post(
        "/v1/jobs",
        json={
            "agent_id": "sam",
            "input_data": sam
            | {
                "action": "review_responses",
                "reviews": [{"author": "Dana", "rating": 5, "text": "Lovely cardamom buns."}],
            },
        },
        headers=owner.headers,
    )
    for response, expected in ((created, "Bean & Leaf Espresso Bar Seattle"), (reviews, "Lovely cardamom buns")):
        assert response.status_code == 201, response.text
        job = await wait_for(client, owner, response.json()["id"], seconds=60)
        assert job["status"] == "completed", job
        pdf = await client.get(f"/v1/jobs/{job['id']}/output", params={"format": "pdf"}, headers=owner.headers)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert expected in " ".join(text.split())
