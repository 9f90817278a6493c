"""With LLM_BASE_URL set, maya and jordan draft through chat completions, and fall back offline on any failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from backplane.agents import llm
from backplane.agents.jordan import Jordan
from backplane.agents.maya import Maya
from backplane.core.config import Settings
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.sites import ChatServer, json_answer
from tests.fixtures.http_server import LoopbackServer, serve

ARTICLE = " ".join(samples.BLOG_PARAGRAPHS)
THREAD = ["Compost feeds city gardens.", "It costs almost nothing.", "Start this week."]
LINKEDIN = "Composting is the quiet upgrade every city garden deserves. Here is why it matters."
NEWSLETTER = {
    "subject": "Compost, explained",
    "preview_text": "Why scraps become soil",
    "intro": "Welcome!",
    "sections": [{"heading": "Why", "body": "Better soil."}, {"heading": "How", "body": "Mix greens and browns."}],
    "outro": "See you soon.",
}
CHUNK = b"x" * 65536
JORDAN_POSTS = [f"LLM post {n} about AI in marketing for B2B marketers. What do you think?" for n in range(3)]


def good_answer(system: str, user: str) -> str | None:
    if "Twitter thread" in user:
        return json_answer({"posts": THREAD})
    if "Write a LinkedIn post" in user:
        return LINKEDIN
    if "newsletter" in user:
        return json_answer(NEWSLETTER)
    if "distinct LinkedIn posts" in user:
        return json_answer({"posts": JORDAN_POSTS})
    return None


@pytest.fixture
def chat() -> Iterator[tuple[ChatServer, LoopbackServer]]:
    server = ChatServer(good_answer)
    with serve(server.app(), name="chat") as loopback:
        yield server, loopback


def llm_settings(base: Settings, url: str) -> Settings:
    return base.model_copy(update={"llm_base_url": url, "llm_api_key": SecretStr("sk-test"), "llm_model": "test-model"})


def context(make_ctx: MakeContext, agent_settings: Settings, http: httpx.AsyncClient, url: str, **kw: Any):  # type: ignore[no-untyped-def]
    configured = llm_settings(agent_settings, url)
    return make_ctx(settings=configured, llm=llm.chat_completions(configured, http), **kw)


def test_no_llm_without_base_url(agent_settings: Settings, http: httpx.AsyncClient) -> None:
    assert agent_settings.llm_base_url is None
    assert llm.chat_completions(agent_settings, http) is None


async def test_maya_drafts_through_the_llm(
    make_ctx: MakeContext, agent_settings: Settings, http: httpx.AsyncClient, chat: tuple[ChatServer, LoopbackServer]
) -> None:
    server, loopback = chat
    ctx = context(make_ctx, agent_settings, http, f"{loopback.url}/v1")

    output = await run_agent(Maya(), ctx, {"content": ARTICLE, "tone": "casual"})

    assert output["twitter_thread"] == {
        "posts": [{"text": f"{n}/3 {t}", "char_count": len(f"{n}/3 {t}")} for n, t in enumerate(THREAD, start=1)],
        "post_count": 3,
        "generated_by": "llm",
    }
    assert output["linkedin_post"]["text"] == LINKEDIN + "\n\n" + " ".join(output["hashtags"])
    assert output["linkedin_post"]["generated_by"] == "llm"
    assert output["newsletter"]["subject"] == "Compost, explained"
    assert output["newsletter"]["sections"] == NEWSLETTER["sections"]
    assert output["newsletter"]["body"].startswith("# Compost, explained\n\nWelcome!\n\n## Why\n\nBetter soil.")
    assert output["hashtags"] == ["#CityGardens", "#Composting", "#Soil"]  # always the content's own key terms
    assert len(server.requests) == 3
    first = server.requests[0]
    assert first["authorization"] == "Bearer sk-test"
    assert first["body"]["model"] == "test-model"
    assert [m["role"] for m in first["body"]["messages"]] == ["system", "user"]
    assert "casual tone" in first["body"]["messages"][0]["content"]
    assert "Composting turns kitchen scraps into rich soil" in first["body"]["messages"][1]["content"]


async def test_maya_refuses_a_draft_that_breaks_the_rules(
    make_ctx: MakeContext, agent_settings: Settings, http: httpx.AsyncClient, chat: tuple[ChatServer, LoopbackServer]
) -> None:
    server, loopback = chat
    server.answer = lambda system, user: json_answer({"posts": ["x" * 400]}) if "Twitter" in user else "not json"
    ctx = context(make_ctx, agent_settings, http, f"{loopback.url}/v1")

    output = await run_agent(Maya(), ctx, {"content": ARTICLE, "target_formats": ["twitter_thread", "newsletter"]})

    assert output["twitter_thread"]["generated_by"] == "offline"  # a 400-character post is not a tweet
    assert all(p["char_count"] <= 280 for p in output["twitter_thread"]["posts"])
    assert output["newsletter"]["generated_by"] == "offline"  # the answer was not JSON


@pytest.mark.parametrize("failure", ["status 500", "closed port"])
async def test_llm_failures_fall_back_to_the_offline_pipeline(
    failure: str, make_ctx: MakeContext, agent_settings: Settings, http: httpx.AsyncClient
) -> None:
    failing = ChatServer(lambda system, user: None)
    with serve(failing.app(), name="failing-chat") as loopback:
        url = f"{loopback.url}/v1"
        if failure == "closed port":
            loopback.stop()
        now = lambda: datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # noqa: E731
        maya_request = {"content": ARTICLE}
        jordan_request = {"content_topic": "AI in marketing", "target_audience": "B2B marketers"}

        maya = await run_agent(Maya(), context(make_ctx, agent_settings, http, url), maya_request)
        jordan = await run_agent(Jordan(), context(make_ctx, agent_settings, http, url, now=now), jordan_request)

        assert maya == await run_agent(Maya(), make_ctx(), maya_request)
        assert jordan == await run_agent(Jordan(), make_ctx(now=now), jordan_request)
        assert jordan["generated_by"] == "offline"
        assert len(failing.requests) == (4 if failure == "status 500" else 0)


async def test_jordan_drafts_through_the_llm(
    make_ctx: MakeContext, agent_settings: Settings, http: httpx.AsyncClient, chat: tuple[ChatServer, LoopbackServer]
) -> None:
    server, loopback = chat
    now = lambda: datetime(2026, 11, 23, 13, 30, tzinfo=UTC)  # noqa: E731
    ctx = context(make_ctx, agent_settings, http, f"{loopback.url}/v1", now=now)

    output = await run_agent(
        Jordan(), ctx, {"content_topic": "AI in marketing", "target_audience": "B2B marketers", "timezone": "UTC"}
    )

    assert output["generated_by"] == "llm"
    assert [p["content"] for p in output["suggested_posts"]] == JORDAN_POSTS
    assert [p["optimal_posting_time"] for p in output["suggested_posts"]] == [
        "2026-11-24T09:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-26T09:00:00Z",
    ]
    assert output["suggested_posts"][0]["hashtags"] == ["#AI", "#Marketing", "#B2B"]
    assert "thought leadership" not in server.requests[0]["body"]["messages"][0]["content"]
    assert '"AI in marketing" for B2B marketers' in server.requests[0]["body"]["messages"][1]["content"]


async def test_chat_completions_errors(agent_settings: Settings, http: httpx.AsyncClient) -> None:
    server = ChatServer(lambda system, user: "")
    with serve(server.app()) as loopback:
        call = llm.chat_completions(llm_settings(agent_settings, f"{loopback.url}/v1/"), http)
        assert call is not None
        with pytest.raises(llm.LLMError, match="empty message"):
            await call("s", "u")
        server.answer = lambda system, user: None
        with pytest.raises(llm.LLMError, match="answered 500"):
            await call("s", "u")
        server.answer = lambda system, user: "fine"
        assert await call("s", "u") == "fine"


async def test_an_llm_answer_past_the_size_cap_is_cut_off(agent_settings: Settings, http: httpx.AsyncClient) -> None:
    async def endless(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"choices": [{"message": {"content": "'
            for _ in range(512):  # 32 MB: read whole, this answer would be held in memory at once
                yield CHUNK

        return StreamingResponse(body(), media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", endless, methods=["POST"])])
    with serve(app, name="endless-chat") as loopback:
        configured = llm_settings(agent_settings, f"{loopback.url}/v1")
        assert configured.llm_max_response_bytes == 1024 * 1024  # the default
        call = llm.chat_completions(configured, http)
        assert call is not None
        with pytest.raises(llm.LLMError) as refused:
            await call("s", "u")
    assert str(refused.value) == "chat completions answered more than 1048576 bytes"


async def test_an_llm_answer_announced_too_large_is_not_read(agent_settings: Settings, http: httpx.AsyncClient) -> None:
    server = ChatServer(lambda system, user: "y" * 4096)
    with serve(server.app(), name="large-chat") as loopback:
        configured = llm_settings(agent_settings, f"{loopback.url}/v1").model_copy(
            update={"llm_max_response_bytes": 1024}
        )
        call = llm.chat_completions(configured, http)
        assert call is not None
        with pytest.raises(llm.LLMError) as refused:
            await call("s", "u")
    assert str(refused.value) == "chat completions answered more than 1024 bytes"
