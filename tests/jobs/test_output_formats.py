"""`GET /v1/jobs/{id}/output?format=` (or `Accept`): each agent's renderings through the API and a real
worker, parsed back and compared with the JSON output; each rendering stored once."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from pypdf import PdfReader
from sqlalchemy import select, update

from backplane.core.config import Settings
from backplane.jobs.models import RenderedOutput
from tests.agents import samples
from tests.agents.sites import SiteState, business_app
from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.auth import Account, Api
from tests.fixtures.http_server import serve
from tests.jobs.conftest import CreateJob, JobsWorker, wait_for

SCRIPT = "<script>alert('x')</script>"
OUTPUT_KEYS = {"job_id", "agent_id", "status", "content", "finished_at"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": True})  # the sites run on loopback


@pytest.fixture
def site() -> Iterator[str]:
    state = SiteState(samples.business_html(description=None))  # a site with findings to report
    with serve(business_app(state), name="business-site") as server:
        yield f"{server.url}/"


async def completed(client: httpx.AsyncClient, owner: Account, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    job = await wait_for(client, owner, response.json()["id"], seconds=60)
    assert job["status"] == "completed", job
    return job


async def output(client: httpx.AsyncClient, owner: Account, job_id: str, **params: str) -> httpx.Response:
    accept = params.pop("accept", None)
    headers = owner.headers | ({"Accept": accept} if accept is not None else {})
    return await client.get(f"/v1/jobs/{job_id}/output", params=params, headers=headers)


def rows_of(document: Any, table_id: str) -> list[list[str]]:
    [table] = document.xpath(f"//table[@id='{table_id}']")
    return [[" ".join(td.text_content().split()) for td in tr.xpath("td")] for tr in table.xpath("tbody/tr")]


async def test_agents_list_their_output_formats(client: httpx.AsyncClient, owner: Account) -> None:
    expected = {
        "maya": ["json", "markdown", "text"],
        "jordan": ["json", "report"],
        "sam": ["json", "html", "pdf"],
        "taylor": ["json", "csv"],
    }
    for agent_id, formats in expected.items():
        config = await client.get(f"/v1/agents/{agent_id}/config", headers=owner.headers)
        assert config.json()["output_formats"] == formats
    listed = {a["id"]: a["output_formats"] for a in (await client.get("/v1/agents", headers=owner.headers)).json()}
    assert {k: listed[k] for k in expected} == expected


async def test_sam_audit_as_html_and_pdf_stored_once(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker, app: FastAPI, site: str
) -> None:
    business = samples.BUSINESS | {"website": site, "business_name": f"Joe's {SCRIPT}"}
    job = await completed(
        client,
        owner,
        await client.post("/v1/jobs", json={"agent_id": "sam", "input_data": business}, headers=owner.headers),
    )
    results = job["output_data"]["audit_results"]

    # No format: today's JSON answer, also for Accept */* and application/json.
    plain = await output(client, owner, job["id"])
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    assert set(plain.json()) == OUTPUT_KEYS and plain.json()["content"] == job["output_data"]
    for accept in ("*/*", "application/json", "application/json, text/plain, */*"):
        assert (await output(client, owner, job["id"], accept=accept)).json() == plain.json()

    page = await output(client, owner, job["id"], format="html")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-disposition"] == f'inline; filename="{job["id"]}.html"'
    assert page.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["vary"] == "Accept"
    assert page.headers["x-request-id"].startswith("req_")
    document = lxml_html.fromstring(page.content)
    assert document.xpath("//script") == [], "the business name is text, not markup"
    assert f"Joe's {SCRIPT}" in document.xpath("//h1")[0].text_content()
    scores = dict(rows_of(document, "scores"))
    assert scores["SEO score"] == f"{results['seo_score']} / 100"
    assert scores["Business profile score"] == f"{results['gmb_score']} / 100"
    assert [row[3] for row in rows_of(document, "recommendations")] == [r["action"] for r in results["recommendations"]]
    assert (await output(client, owner, job["id"], accept="text/html")).content == page.content

    pdf = await output(client, owner, job["id"], accept="application/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert f"SEO score {results['seo_score']} / 100" in text
    assert f"Business profile score {results['gmb_score']} / 100" in text
    assert " ".join(results["recommendations"][0]["action"].split()) in text

    # `format` wins over Accept.
    wins = await output(client, owner, job["id"], format="json", accept="application/pdf")
    assert wins.json() == plain.json()

    # Stored once: a second download is the stored bytes, not a new rendering.
    async with app.state.sessionmaker() as session:
        stored = (await session.execute(select(RenderedOutput).where(RenderedOutput.job_id == job["id"]))).scalars()
        first = {r.format: (r.created_at, r.content) for r in stored}
    assert set(first) == {"html", "pdf"}
    assert first["html"][1] == page.content and first["pdf"][1] == pdf.content
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(RenderedOutput)
            .where(RenderedOutput.job_id == job["id"], RenderedOutput.format == "html")
            .values(content=b"<p>as stored</p>")
        )
    again = await output(client, owner, job["id"], format="html")
    assert again.content == b"<p>as stored</p>", "served from job_outputs, not rendered again"
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(select(RenderedOutput).where(RenderedOutput.job_id == job["id"]))).scalars()
        assert {r.format: r.created_at for r in rows} == {k: v[0] for k, v in first.items()}


async def test_unsupported_formats_are_422_naming_the_agents_formats(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    job = await completed(
        client,
        owner,
        await client.post(
            "/v1/jobs",
            json={"agent_id": "maya", "input_data": {"content": "Short notes on composting."}},
            headers=owner.headers,
        ),
    )
    assert_invalid(
        await output(client, owner, job["id"], format="pdf"),
        {"format": ["maya outputs json, markdown, text; not 'pdf'."]},
    )
    assert_invalid(
        await output(client, owner, job["id"], accept="application/pdf"),
        {
            "Accept": [
                "maya outputs json, markdown, text (application/json, text/markdown, text/plain); "
                "not 'application/pdf'."
            ]
        },
    )
    assert_invalid(
        await output(client, owner, job["id"], format="x" * 17),
        {"format": ["String should have at most 16 characters"]},
    )
    # A malformed Accept is ignored, as if none had been sent.
    assert (await output(client, owner, job["id"], accept=";;;")).json()["content"] == job["output_data"]


async def test_maya_jordan_and_taylor_formats_hold_their_json(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    maya = await client.post(
        "/v1/jobs",
        json={
            "agent_id": "maya",
            "input_data": {
                "content": "Remote teams ship faster when they write things down. "
                "Written decisions survive time zones. A short weekly memo replaces three meetings.",
                "target_formats": ["twitter_thread", "newsletter"],
            },
        },
        headers=owner.headers,
    )
    jordan = await client.post(
        "/v1/jobs",
        json={
            "agent_id": "jordan",
            "input_data": {"content_topic": "AI in marketing", "target_audience": "B2B marketers"},
        },
        headers=owner.headers,
    )
    taylor = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor", "config": '{"extraction_type":"invoice"}'},
        files=[("files", ("invoice.pdf", samples.invoice_pdf(), "application/pdf"))],
        headers=owner.headers,
    )
    maya_job = await completed(client, owner, maya)
    jordan_job = await completed(client, owner, jordan)
    taylor_job = await completed(client, owner, taylor)

    markdown = await output(client, owner, maya_job["id"], accept="text/markdown")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    tokens = MarkdownIt().parse(markdown.text)
    paragraphs = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "paragraph_open"]
    for post in maya_job["output_data"]["twitter_thread"]["posts"]:
        assert post["text"] in paragraphs
    text = await output(client, owner, maya_job["id"], format="text")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert maya_job["output_data"]["newsletter"]["subject"] in text.text

    report = await output(client, owner, jordan_job["id"], format="report")
    assert report.headers["content-type"] == "text/html; charset=utf-8"
    schedule = rows_of(lxml_html.fromstring(report.content), "schedule")
    posts = jordan_job["output_data"]["suggested_posts"]
    assert [(row[1], float(row[5])) for row in schedule] == [
        (p["optimal_posting_time"], p["engagement_score"]) for p in posts
    ]

    table = await output(client, owner, taylor_job["id"], accept="text/csv")
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    assert table.headers["content-disposition"] == f'inline; filename="{taylor_job["id"]}.csv"'
    rows = list(csv.DictReader(io.StringIO(table.text, newline="")))
    data = taylor_job["output_data"]["extracted_data"]
    fields = {r["name"]: r["value"] for r in rows if r["record"] == "field"}
    assert fields["invoice_number"] == data["invoice_number"] and float(fields["total"]) == data["total"]
    amounts = [float(r["amount"]) for r in rows if r["record"] == "line_item"]
    assert amounts == [item["amount"] for item in data["line_items"]] and len(amounts) == len(samples.ITEMS)


async def test_taylor_tables_of_a_pdf_as_csv_hold_its_json(
    client: httpx.AsyncClient, owner: Account, jobs_worker: JobsWorker
) -> None:
    created = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor", "input_data": '{"extraction_type":"tables"}'},
        files=[("files", ("stock.pdf", samples.table_pdf(), "application/pdf"))],
        headers=owner.headers,
    )
    job = await completed(client, owner, created)
    tables = job["output_data"]["extracted_data"]["tables"]
    assert [(t["page"], t["header"]) for t in tables] == [(1, samples.STOCK_TABLE[0]), (2, samples.REGION_TABLE[0])]

    table = await output(client, owner, job["id"], format="csv")
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(table.text, newline="")))
    for number, expected in enumerate(tables, start=1):
        mine = [r for r in rows if r["table"] == str(number)]
        assert [[r[name] for name in expected["header"]] for r in mine] == expected["rows"]
        assert {r["page"] for r in mine} == {str(expected["page"])}


async def test_a_format_of_an_unfinished_or_foreign_job(
    client: httpx.AsyncClient, owner: Account, api: Api, create_job: CreateJob
) -> None:
    job = await create_job("maya", input_data={"content": "Notes to repurpose later."})  # no worker: stays queued
    for params in ({"format": "markdown"}, {"accept": "text/markdown"}):
        assert_error(
            await output(client, owner, job["id"], **params),
            409,
            "JOB_NOT_COMPLETED",
            "The job is queued; its output exists once it is completed.",
            {"status": "queued"},
        )
    stranger = await api.register()
    assert_not_found(await output(client, stranger, job["id"], format="markdown"), "No job with this id.")


async def test_openapi_documents_the_format_parameter_and_content_types(client: httpx.AsyncClient) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/jobs/{job_id}/output"]["get"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "format"]
    assert parameter["in"] == "query" and parameter["required"] is False
    content = operation["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/JobOutput"}
    assert content["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    for media_type in ("text/markdown", "text/plain", "text/html", "text/csv"):
        assert content[media_type]["schema"] == {"type": "string"}
    assert "422" in operation["responses"] and "409" in operation["responses"]
    agent_config = (await client.get("/openapi.json")).json()["components"]["schemas"]["AgentConfig"]
    assert "output_formats" in agent_config["required"]


async def test_an_agent_without_renderings_answers_json_only(
    client: httpx.AsyncClient, owner: Account, create_job: CreateJob, jobs_worker: JobsWorker
) -> None:
    job = await wait_for(client, owner, (await create_job("test-noop"))["id"])
    assert job["status"] == "completed", job
    assert_invalid(
        await output(client, owner, job["id"], format="markdown"),
        {"format": ["test-noop outputs json; not 'markdown'."]},
    )
    assert (await output(client, owner, job["id"], accept="text/*, */*;q=0.1")).json()["content"] == job["output_data"]
