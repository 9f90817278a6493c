"""Maya on recordings: WAV, MP3 and MP4 files transcribed offline (FFmpeg + PocketSphinx) or through an
OpenAI-compatible `/audio/transcriptions` on loopback, then written as a newsletter, a LinkedIn article or a
content calendar from the words spoken; media that cannot be transcribed fails at once."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backplane.agents import sandbox
from backplane.agents.base import AgentInputError
from backplane.agents.maya import Maya
from backplane.agents.text import word_count
from backplane.agents.transcribe import mp4_without_audio, spoken_words
from backplane.core.config import Settings
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.media import HEARD, Media, corrupt_mp3, make_media
from tests.fixtures.http_server import LoopbackServer, serve


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return make_media(tmp_path_factory.mktemp("media"))


def heard(text: str) -> set[str]:
    lowered = text.lower()
    return {w for w in HEARD if w in lowered}


async def test_a_wav_podcast_becomes_a_newsletter_of_its_own_words_with_timed_segments(
    make_ctx: MakeContext, media: Media
) -> None:
    ctx = make_ctx({"episode.wav": media.wav})
    reports: list[tuple[float, str]] = []

    async def report(fraction: float, message: str) -> None:
        reports.append((fraction, message))

    ctx.report = report
    output = await run_agent(Maya(), ctx, {"source_type": "file", "target_formats": ["newsletter"]})

    transcript = output["transcript"]
    assert transcript["engine"] == "pocketsphinx"
    assert transcript["duration_seconds"] == pytest.approx(media.seconds, abs=0.05)
    assert len(heard(transcript["text"])) >= 5, transcript["text"]
    segments = transcript["segments"]
    assert segments and all(s["file_id"] == "file_1" for s in segments)
    assert " ".join(s["text"] for s in segments) == transcript["text"]
    times = [t for s in segments for t in (s["start"], s["end"])]
    assert times == sorted(times) and 0 <= times[0] < times[-1] <= media.seconds + 0.05
    assert len(segments) == 3, "the pauses between the sentences split them"
    # The newsletter is written from the transcript, not from a template.
    newsletter = output["newsletter"]
    assert len(heard(newsletter["body"])) >= 4, newsletter["body"]
    assert output["source"]["type"] == "file" and output["source"]["word_count"] == len(transcript["text"].split())
    assert reports == [(0.8, "1 of 1 chunks transcribed")]


async def test_an_mp4_video_becomes_a_linkedin_article(make_ctx: MakeContext, media: Media) -> None:
    output = await run_agent(
        Maya(), make_ctx({"keynote.mp4": media.mp4}), {"target_formats": ["article"], "tone": "casual"}
    )

    article = output["linkedin_article"]
    assert len(heard(output["transcript"]["text"])) >= 5
    assert len(heard(article["introduction"] + " " + " ".join(s["body"] for s in article["sections"]))) >= 4
    assert article["body"].startswith(f"# {article['title']}\n\n{article['introduction']}")
    for section in article["sections"]:
        assert f"## {section['heading']}\n\n{section['body']}" in article["body"]
    assert article["char_count"] == len(article["body"]) and article["word_count"] == word_count(article["body"])
    assert article["generated_by"] == "offline" and article["estimated_read_time"] == "1 min"


async def test_a_video_without_sound_and_a_corrupt_mp3_fail_at_once(make_ctx: MakeContext, media: Media) -> None:
    with pytest.raises(AgentInputError, match=r"^silent\.mp4 has no audio track to transcribe\.$"):
        await run_agent(Maya(), make_ctx({"silent.mp4": media.silent_mp4}), {"source_type": "file"})
    with pytest.raises(AgentInputError, match=r"^broken\.mp3 could not be decoded: ") as raised:
        await run_agent(Maya(), make_ctx({"broken.mp3": corrupt_mp3()}), {"source_type": "file"})
    assert "/tmp" not in str(raised.value), "the temporary path is not the customer's business"


async def test_the_time_limit_stops_the_recogniser_within_its_chunk(make_ctx: MakeContext, media: Media) -> None:
    run = run_agent(Maya(), make_ctx({"episode.mp3": media.mp3}), {"source_type": "file"})
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):  # as the job runner bounds `run` by the agent's time limit
            await run
    assert sandbox.live_children() == frozenset()  # FFmpeg and PocketSphinx were killed with their job


# -- through an OpenAI-compatible /audio/transcriptions --------------------------------------------------


class TranscriptionsFake:
    """`POST /v1/audio/transcriptions` answering verbose JSON; records what it was sent."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def transcriptions(request: Request) -> Response:
            async with request.form() as form:
                upload = form["file"]
                assert not isinstance(upload, str)
                self.requests.append(
                    {
                        "authorization": request.headers.get("authorization"),
                        "content_type": request.headers["content-type"].split(";")[0],
                        "fields": {k: v for k, v in form.multi_items() if isinstance(v, str)},
                        "filename": upload.filename,
                        "file_type": upload.content_type,
                        "file": await upload.read(),
                    }
                )
            if self.fail:
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
            return JSONResponse(
                {
                    "text": "Bees pollinate the rooftop orchard. Honey sales fund the school trip.",
                    "duration": 4.7,
                    "segments": [
                        {"id": 0, "start": 0.0, "end": 2.4, "text": " Bees pollinate the rooftop orchard."},
                        {"id": 1, "start": 2.6, "end": 4.7, "text": " Honey sales fund the school trip."},
                    ],
                }
            )

        return Starlette(routes=[Route("/v1/audio/transcriptions", transcriptions, methods=["POST"])])


@pytest.fixture
def fake() -> TranscriptionsFake:
    return TranscriptionsFake()


@pytest.fixture
def endpoint(fake: TranscriptionsFake) -> Iterator[LoopbackServer]:
    with serve(fake.app(), name="transcriptions") as server:
        yield server


def with_llm(settings: Settings, server: LoopbackServer) -> Settings:
    return settings.model_copy(
        update={
            "llm_base_url": f"{server.url}/v1",
            "llm_api_key": SecretStr("sk-test"),
            "llm_transcription_model": "whisper-1",
        }
    )


async def test_the_endpoint_transcribes_when_configured(
    make_ctx: MakeContext, media: Media, agent_settings: Settings, fake: TranscriptionsFake, endpoint: LoopbackServer
) -> None:
    ctx = make_ctx({"episode.mp3": media.mp3}, settings=with_llm(agent_settings, endpoint))
    output = await run_agent(Maya(), ctx, {"source_type": "file", "target_formats": ["newsletter"]})

    [sent] = fake.requests
    assert sent["authorization"] == "Bearer sk-test" and sent["content_type"] == "multipart/form-data"
    assert sent["fields"] == {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "timestamp_granularities[]": "segment",
    }
    assert (sent["filename"], sent["file_type"]) == ("chunk.wav", "audio/wav")
    with wave.open(io.BytesIO(sent["file"])) as audio:  # the MP3 decoded to 16 kHz mono 16-bit PCM
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 16000)
        assert audio.getnframes() / 16000 == pytest.approx(media.seconds, abs=0.1)
    assert output["transcript"] == {
        "text": "Bees pollinate the rooftop orchard. Honey sales fund the school trip.",
        "duration_seconds": pytest.approx(media.seconds, abs=0.2),  # the MP3 encoder's padding
        "engine": "llm",
        "segments": [
            {"file_id": "file_1", "start": 0.0, "end": 2.4, "text": "Bees pollinate the rooftop orchard."},
            {"file_id": "file_1", "start": 2.6, "end": 4.7, "text": "Honey sales fund the school trip."},
        ],
    }
    assert "Bees pollinate the rooftop orchard." in output["newsletter"]["body"]


async def test_an_endpoint_that_fails_leaves_the_chunk_to_the_offline_recogniser(
    make_ctx: MakeContext, agent_settings: Settings, endpoint: LoopbackServer, fake: TranscriptionsFake
) -> None:
    fake.fail = True
    silence = io.BytesIO()
    with wave.open(silence, "wb") as writer:  # one second of silence: nothing to hear, quickly
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16000)
        writer.writeframes(b"\x00\x00" * 16000)
    ctx = make_ctx({"quiet.wav": silence.getvalue()}, settings=with_llm(agent_settings, endpoint))
    with pytest.raises(AgentInputError, match=r"^No speech was recognised in quiet\.wav\.$"):
        await run_agent(Maya(), ctx, {"source_type": "file"})
    assert len(fake.requests) == 1


# -- the content calendar and the segments, without audio ----------------------------------------------

ARTICLE = (
    "Rooftop beehives need shade in July. Beekeepers check the frames every week. "
    "Honey from city hives tastes of linden trees. Schools visit the hives in spring. "
    "Neighbours worry about stings, but bees ignore people. The harvest funds a school trip."
)


async def test_a_content_calendar_spreads_the_sources_sentences_over_weekdays_and_platforms(
    make_ctx: MakeContext,
) -> None:
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    output = await run_agent(
        Maya(),
        make_ctx(now=lambda: friday),
        {"content": ARTICLE, "target_formats": ["content_calendar"]},
        {"calendar_posts": 4},
    )

    calendar = output["content_calendar"]
    posts = calendar["posts"]
    assert [(p["date"], p["weekday"], p["platform"], p["time"]) for p in posts] == [
        ("2026-11-30", "Monday", "linkedin", "09:00"),  # Saturday is skipped
        ("2026-12-01", "Tuesday", "twitter", "12:00"),
        ("2026-12-02", "Wednesday", "linkedin", "09:00"),
        ("2026-12-03", "Thursday", "twitter", "12:00"),
    ]
    assert (calendar["start_date"], calendar["end_date"], calendar["post_count"]) == ("2026-11-30", "2026-12-03", 4)
    sources = [s for s in ARTICLE.replace(". ", ".\n").splitlines()]
    for post in posts:
        assert post["char_count"] == len(post["text"])
        assert any(post["text"].startswith(s) for s in sources), post["text"]  # each post is one of its sentences
        if post["platform"] == "twitter":
            assert len(post["text"]) <= 280
    assert len({p["text"] for p in posts}) == 4


async def test_a_calendar_start_on_a_sunday_moves_to_monday(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"content": ARTICLE, "target_formats": ["calendar"]},
        {"calendar_posts": 20, "calendar_start": "2026-12-06"},
    )
    posts = output["content_calendar"]["posts"]
    assert posts[0]["date"] == "2026-12-07" and len(posts) == 6  # as many as the source has sentences


def test_the_recognisers_silence_noise_and_variant_marks_are_not_words() -> None:
    assert spoken_words("<s> read(2) the [NOISE] <sil> +breath+ news(3) </s>") == "read the news"
    assert spoken_words("") == ""


def test_an_mp4_without_sound_is_known_from_its_first_bytes_when_its_index_comes_first(media: Media) -> None:
    assert mp4_without_audio(media.silent_mp4[:65536])
    assert not mp4_without_audio(media.mp4)  # its sound track, read from the whole file
    assert not mp4_without_audio(media.mp4[:1024])  # its index is at its end: not known from its head
    assert not mp4_without_audio(b"\x00\x00\x00\x01moov" + b"\x00" * 8)  # a 64-bit size cut off: unknown


async def test_the_llm_drafts_the_article_from_the_source_and_a_bad_draft_falls_back(make_ctx: MakeContext) -> None:
    prompts: list[str] = []
    answers = [
        '{"title": "City hives", "introduction": "Bees on roofs.", "sections": [{"heading": "Shade", '
        '"body": "Hives need shade in July."}], "conclusion": "Visit one."}',
        '{"title": "City hives", "sections": "not a list"}',
    ]

    async def llm(system: str, user: str) -> str:
        prompts.append(user)
        return answers[len(prompts) - 1]

    drafted = await run_agent(Maya(), make_ctx(llm=llm), {"content": ARTICLE, "target_formats": ["article"]})
    article = drafted["linkedin_article"]
    assert "Rooftop beehives need shade in July." in prompts[0] and "LinkedIn article" in prompts[0]
    assert article["generated_by"] == "llm" and article["title"] == "City hives"
    assert article["body"] == "# City hives\n\nBees on roofs.\n\n## Shade\n\nHives need shade in July.\n\nVisit one."

    fallback = await run_agent(Maya(), make_ctx(llm=llm), {"content": ARTICLE, "target_formats": ["article"]})
    assert fallback["linkedin_article"]["generated_by"] == "offline"
    assert "Rooftop beehives need shade in July." in fallback["linkedin_article"]["body"]
