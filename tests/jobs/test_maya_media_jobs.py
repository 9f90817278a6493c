"""A podcast episode (MP3) through the job API and a real worker: transcribed offline chunk by chunk (watched
live as "chunks transcribed"), written as a newsletter, a LinkedIn article and a content calendar from its own
words, and downloaded as Markdown and text that a Markdown parser reads back to the JSON's values."""

from __future__ import annotations

import httpx
import pytest
from markdown_it import MarkdownIt

from tests.agents.media import HEARD, make_media
from tests.fixtures.auth import Account
from tests.jobs.conftest import JobsWorker, wait_for
from tests.jobs.test_live import read_events, served, summary

__all__ = ["served"]  # the live-stream server fixture, shared with tests/jobs/test_live.py


async def test_a_podcast_mp3_becomes_a_newsletter_article_and_calendar(
    client: httpx.AsyncClient,
    owner: Account,
    jobs_worker: JobsWorker,
    served: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    media = make_media(tmp_path_factory.mktemp("media"))
    response = await client.post(
        "/v1/jobs",
        data={
            "agent_id": "maya",
            "input_data": '{"target_formats": ["newsletter", "linkedin_article", "content_calendar"]}',
            "config": '{"calendar_posts": 2, "calendar_start": "2026-12-01"}',
        },
        files=[("files", ("episode.mp3", media.mp3, "audio/mpeg"))],
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    for _ in range(3):  # transcription is CPU-bound: on a busy 2-core machine it may take over a minute
        job = await wait_for(client, owner, response.json()["id"], seconds=60)
        if job["status"] not in {"pending", "queued", "processing"}:
            break
    assert job["status"] == "completed", job
    result = job["output_data"]
    transcript = result["transcript"]
    spoken = {w for w in HEARD if w in transcript["text"]}
    assert len(spoken) >= 5, transcript
    assert [s["file_id"] for s in transcript["segments"]] == [job["file_ids"][0]] * len(transcript["segments"])
    assert ("progress", (0.8, "1 of 1 chunks transcribed")) in summary(await read_events(served, owner, job["id"]))
    for written in (result["newsletter"]["body"], result["linkedin_article"]["body"]):
        assert len({w for w in spoken if w in written.lower()}) >= 3, written
    posts = result["content_calendar"]["posts"]
    assert [(p["date"], p["platform"]) for p in posts] == [("2026-12-01", "linkedin"), ("2026-12-02", "twitter")]

    markdown = await client.get(f"/v1/jobs/{job['id']}/output", params={"format": "markdown"}, headers=owner.headers)
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    tokens = MarkdownIt("commonmark").parse(markdown.text)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "Transcript" in headings and "Content calendar" in headings
    assert f"LinkedIn article: {result['linkedin_article']['title']}" in headings
    for post in posts:
        platform = {"linkedin": "LinkedIn", "twitter": "Twitter/X"}[post["platform"]]
        assert f"{post['weekday']} {post['date']} {post['time']} UTC, {platform}" in headings
    paragraphs = [t.content for t in tokens if t.type == "inline"]
    for segment in transcript["segments"]:
        assert any(p.endswith(segment["text"]) and p.startswith("[0:0") for p in paragraphs), segment
    text = await client.get(f"/v1/jobs/{job['id']}/output", params={"format": "text"}, headers=owner.headers)
    assert text.status_code == 200 and "Transcript\n----------" in text.text
    assert all(p["text"].split("\n\n")[0] in text.text for p in posts)
