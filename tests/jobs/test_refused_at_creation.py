"""An input that can never produce output is refused when the job is created (422 naming the field), before
any job row exists or the month's quota moves: JSON, batch and multipart alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from backplane.billing import quota
from backplane.core.config import Settings
from backplane.files.models import File
from backplane.jobs.models import Job
from tests.agents.media import make_media
from tests.files import samples
from tests.files.samples import stored_files
from tests.fixtures.assertions import assert_invalid
from tests.fixtures.auth import Account

NO_SOURCE = "Maya needs something to repurpose: `content` (text), a `url`, or files (`file_ids` or an upload)."


async def _nothing_created(app: FastAPI, owner: Account) -> None:
    organization = uuid.UUID(owner.organization_id)
    assert await quota.used(app.state.redis, organization, datetime.now(UTC)) == 0
    async with app.state.sessionmaker() as session:
        jobs = await session.scalar(select(func.count()).select_from(Job).where(Job.organization_id == organization))
    assert jobs == 0


async def _upload(client: httpx.AsyncClient, owner: Account, name: str, content: bytes, agent_id: str) -> str:
    response = await client.post(
        "/v1/files", data={"agent_id": agent_id}, files={"file": (name, content, "text/csv")}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


SAM = {
    "business_name": "Joe's Coffee Shop",
    "location": "Seattle, WA",
    "website": "https://joescoffee.example/",
}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # The guide's PENDING stage is "validation, quota check": nothing to repurpose is a validation error.
        ({"agent_id": "maya"}, {"input_data.content": [NO_SOURCE]}),
        ({"agent_id": "maya", "input_data": {"content": "  "}}, {"input_data.content": [NO_SOURCE]}),
        (
            {"agent_id": "maya", "input_data": {"content": "!!! ... ???"}},
            {"input_data.content": ["The content has no words to repurpose."]},
        ),
        (
            {"agent_id": "maya", "input_data": {"source_type": "file"}},
            {"file_ids": ["source_type file needs at least one file (file_ids or an upload)."]},
        ),
        (
            {"agent_id": "maya", "input_data": {"url": "ftp://example.com/post"}},
            {"input_data.url": ["The URL must use http or https."]},
        ),
        ({"agent_id": "maya", "input_data": {"url": "https://"}}, {"input_data.url": ["The URL has no host."]}),
        (
            {"agent_id": "jordan", "input_data": {"content_topic": "AI", "url": "file:///etc/passwd"}},
            {"input_data.url": ["The URL must use http or https."]},
        ),
        (
            {"agent_id": "sam", "input_data": SAM | {"website": "joescoffee"}},
            {"input_data.website": ["The URL must use http or https."]},
        ),
        ({"agent_id": "taylor"}, {"file_ids": ["Taylor needs at least one file (file_ids or an upload)."]}),
        (
            {"agent_id": "taylor", "config": {"extraction_type": "invoice"}},
            {"file_ids": ["Taylor needs at least one file (file_ids or an upload)."]},
        ),
    ],
)
async def test_an_input_without_a_usable_source_is_refused(
    client: httpx.AsyncClient, owner: Account, app: FastAPI, body: dict[str, Any], fields: dict[str, list[str]]
) -> None:
    assert_invalid(await client.post("/v1/jobs", json=body, headers=owner.headers), fields)
    await _nothing_created(app, owner)


async def test_a_batch_with_one_such_job_creates_none(client: httpx.AsyncClient, owner: Account, app: FastAPI) -> None:
    jobs = [
        {"agent_id": "maya", "input_data": {"content": "Composting turns kitchen scraps into soil."}},
        {"agent_id": "maya"},
        {"agent_id": "taylor"},
    ]
    response = await client.post("/v1/jobs/batch", json={"jobs": jobs}, headers=owner.headers)
    assert_invalid(
        response,
        {
            "jobs.1.input_data.content": [NO_SOURCE],
            "jobs.2.file_ids": ["Taylor needs at least one file (file_ids or an upload)."],
        },
    )
    await _nothing_created(app, owner)


async def test_a_video_without_sound_is_refused_and_the_upload_not_kept(
    client: httpx.AsyncClient,
    owner: Account,
    app: FastAPI,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    media = make_media(tmp_path_factory.mktemp("media"), ("Hello.",))
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "maya"},
        files=[("files", ("silent.mp4", media.silent_mp4, "video/mp4"))],
        headers=owner.headers,
    )
    assert_invalid(response, {"file_ids.0": ["silent.mp4 has no audio track to transcribe."]})
    await _nothing_created(app, owner)
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(File)) == 0
    assert stored_files(Path(settings.storage_dir)) == []


async def test_a_damaged_image_is_refused_for_taylor_and_a_sound_tiff_accepted(
    client: httpx.AsyncClient, owner: Account, app: FastAPI, settings: Settings
) -> None:
    from tests.agents import samples as documents

    bmp = documents.bmp_page(["Parcel 7731"])
    tiff = ("files", ("scan.tiff", documents.tiff_pages([["Page one"], ["Page two"]]), "image/tiff"))
    response = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor"},
        files=[tiff, ("files", ("note.bmp", bmp[:20_000], "image/bmp"))],
        headers=owner.headers,
    )
    assert_invalid(
        response,
        {
            "file_ids.1": [
                f"note.bmp: The image is cut short: its pixels need {len(bmp):,} bytes and the file has 20,000."
            ]
        },
    )
    await _nothing_created(app, owner)
    assert stored_files(Path(settings.storage_dir)) == []
    accepted = await client.post("/v1/jobs", data={"agent_id": "taylor"}, files=[tiff], headers=owner.headers)
    assert accepted.status_code == 201, accepted.text


async def test_blank_text_files_give_maya_nothing_to_repurpose(
    client: httpx.AsyncClient, owner: Account, app: FastAPI
) -> None:
    files = [("files", ("empty.txt", b" \n\t\n", "text/plain")), ("files", ("rule.md", b"---\n***\n", "text/markdown"))]
    response = await client.post("/v1/jobs", data={"agent_id": "maya"}, files=files, headers=owner.headers)
    assert_invalid(
        response,
        {"file_ids.0": ["empty.txt has no words to repurpose."], "file_ids.1": ["rule.md has no words to repurpose."]},
    )
    await _nothing_created(app, owner)
    # One file with words is enough: the blank one is merely empty.
    files.append(("files", ("notes.txt", b"Composting turns kitchen scraps into soil.", "text/plain")))
    accepted = await client.post("/v1/jobs", data={"agent_id": "maya"}, files=files, headers=owner.headers)
    assert accepted.status_code == 201, accepted.text


CITATIONS = b"name,address,city,phone,source\nJoe's Coffee Shop,123 Pine Street,Seattle,(206) 555-0142,yelp\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"title,where\nJoe's,Seattle\n", "a citation list needs a header with name, address or phone columns."),
        (b"name,address,phone\n", "the citation list has no rows."),
        (b"name,address,phone\n , , \n", "the citation list has no rows."),
    ],
)
async def test_a_citation_list_sam_cannot_use_is_refused(
    client: httpx.AsyncClient, owner: Account, app: FastAPI, content: bytes, message: str
) -> None:
    good = await _upload(client, owner, "citations.csv", CITATIONS, "sam")
    bad = await _upload(client, owner, "export.csv", content, "sam")
    response = await client.post(
        "/v1/jobs", json={"agent_id": "sam", "input_data": SAM, "file_ids": [good, bad]}, headers=owner.headers
    )
    assert_invalid(response, {"file_ids.1": [f"export.csv: {message}"]})
    await _nothing_created(app, owner)
    accepted = await client.post(
        "/v1/jobs", json={"agent_id": "sam", "input_data": SAM, "file_ids": [good]}, headers=owner.headers
    )
    assert accepted.status_code == 201, accepted.text


async def test_inputs_that_can_run_are_still_accepted(client: httpx.AsyncClient, owner: Account) -> None:
    for body in (
        {"agent_id": "maya", "input_data": {"content": "Composting turns kitchen scraps into soil."}},
        {"agent_id": "maya", "input_data": {"url": "https://example.com/blog-post"}},
        {"agent_id": "jordan", "input_data": {"content_topic": "AI in marketing"}},
        {"agent_id": "sam", "input_data": SAM},
    ):
        response = await client.post("/v1/jobs", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
    uploaded = await client.post(
        "/v1/jobs",
        data={"agent_id": "taylor"},
        files=[("files", ("scan.png", samples.png(), "image/png"))],
        headers=owner.headers,
    )
    assert uploaded.status_code == 201, uploaded.text


async def test_a_file_whose_bytes_are_gone_is_left_to_the_run(
    client: httpx.AsyncClient, owner: Account, settings: Settings
) -> None:
    file_id = await _upload(client, owner, "export.csv", b"title,where\nJoe's,Seattle\n", "sam")
    for path in stored_files(Path(settings.storage_dir)):
        path.unlink()
    response = await client.post(
        "/v1/jobs", json={"agent_id": "sam", "input_data": SAM, "file_ids": [file_id]}, headers=owner.headers
    )
    assert response.status_code == 201, response.text  # not a 500: the run reports the missing file
