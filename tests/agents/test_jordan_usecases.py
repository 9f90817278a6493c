"""Jordan's profile_optimization, engagement_analytics and dm_campaign: content from the input, refusals at creation,
and the HTML report of each, read back with lxml."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import lxml.html
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from backplane.agents import llm
from backplane.agents.base import AgentInputError, InputFile
from backplane.agents.jordan import Jordan, JordanConfig, JordanInput
from backplane.core.config import Settings
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.sites import ChatServer, json_answer
from tests.fixtures.http_server import LoopbackServer, serve

PROFILE = """Priya Raman
Data engineer at Fernwood Logistics

About
I build data pipelines for warehouse routing. Before that I spent years on spreadsheets.

Experience
Maintained the nightly freight forecasting jobs for Fernwood Logistics
Cut warehouse routing costs by 18% with a new pipeline

Skills
Python, dbt, Airflow
"""

# Wednesday 09:00 posts do best; carousels beat text; "kubernetes" posts beat "hiring" ones; rates rise over time.
METRICS = """Date,Post type,Post title,Impressions,Reactions,Comments,Shares
2026-09-01 17:00,text,Hiring junior analysts this autumn,1000,10,1,0
2026-09-02 09:00,carousel,Kubernetes cost tricks for warehouses,1000,60,12,8
2026-09-08 17:00,text,Hiring again: we grew the team,1000,12,2,1
2026-09-09 09:00,carousel,Kubernetes autoscaling lessons,1000,70,15,10
2026-09-15 17:00,text,Why hiring takes long,1000,14,2,1
2026-09-16 09:00,carousel,Kubernetes migration checklist,1000,80,20,12
"""


def report(output: dict[str, object]) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(Jordan().render("report", output))


async def test_profile_from_pasted_text(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Jordan(),
        make_ctx(),
        {"action": "profile_optimization", "content": PROFILE, "target_audience": "logistics teams"},
    )
    assert output["profile"]["name"] == "Priya Raman"
    assert output["headline"]["current"] == "Data engineer at Fernwood Logistics"
    assert output["headline"]["suggested"].startswith("Data engineer | Helping logistics teams")
    assert any("logistics teams" in issue for issue in output["headline"]["issues"])
    assert "warehouse routing" in output["about"]["suggested"]
    first, second = output["experience"]
    assert first["original"].startswith("Maintained the nightly freight")
    assert any("action verb" in tip for tip in first["suggestions"])
    assert second["suggestions"] == ["Clear and specific: keep it."]  # "Cut ... by 18%"
    assert output["profile"]["skills"] == ["Python", "dbt", "Airflow"]

    page = report(output)
    assert "Priya Raman" in page.findtext(".//h1")
    assert page.get_element_by_id("experience").xpath(".//tbody/tr/td[1]/text()")[1].startswith("Cut warehouse")


@pytest.fixture
def profile_site() -> Iterator[LoopbackServer]:
    async def home(request: Request) -> Response:
        return HTMLResponse(
            "<html><head><title>Tomas Eklund | LinkedIn</title>"
            '<meta name="description" content="Head of growth at Birchline Studio"></head><body>'
            "<h1>Tomas Eklund</h1><article><h2>About</h2><p>I turn small design studios into steady pipelines "
            "of inbound leads through newsletters and webinars.</p><h2>Experience</h2>"
            "<p>Grew Birchline Studio newsletter to 12,000 readers</p></article></body></html>"
        )

    with serve(Starlette(routes=[Route("/in/tomas", home)]), name="profile-site") as server:
        yield server


async def test_profile_from_a_url(make_ctx: MakeContext, profile_site: LoopbackServer) -> None:
    output = await run_agent(
        Jordan(), make_ctx(), {"action": "profile_optimization", "url": f"{profile_site.url}/in/tomas"}
    )
    assert output["profile"]["name"] == "Tomas Eklund"
    assert output["headline"]["current"] == "Head of growth at Birchline Studio"
    assert "inbound leads" in output["profile"]["about"]
    assert output["profile"]["experience"] == ["Grew Birchline Studio newsletter to 12,000 readers"]


async def test_engagement_analytics_from_a_csv_file(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"metrics.csv": METRICS.encode()})
    output = await run_agent(Jordan(), ctx, {"action": "engagement_analytics"})
    assert output["posts_analysed"] == 6 and output["rows_skipped"] == 0
    assert output["best_days"][0]["day"] == "Wednesday"
    assert output["best_hours"][0]["hour"] == "09:00"
    assert [f["format"] for f in output["formats"]] == ["carousel", "text"]
    assert output["formats"][0]["mean_engagement_rate"] == pytest.approx((0.08 + 0.095 + 0.112) / 3, abs=1e-4)
    assert output["topics"][0]["topic"] == "kubernetes"
    assert output["topics"][-1]["topic"] == "hiring"
    assert output["trend"]["direction"] == "rising"
    assert output["top_posts"][0]["text"] == "Kubernetes migration checklist"

    page = report(output)
    days = page.get_element_by_id("days").xpath(".//tbody/tr/td[1]/text()")
    assert days[0] == "Wednesday"
    assert page.get_element_by_id("topics").xpath(".//tbody/tr/td[1]/text()")[0] == "kubernetes"


async def test_engagement_analytics_from_pasted_csv_with_rates(make_ctx: MakeContext) -> None:
    pasted = "posted_at,engagement rate,format\n2026-10-05,2.5%,video\n2026-10-12,not a number,video\n"
    output = await run_agent(Jordan(), make_ctx(), {"action": "engagement_analytics", "content": pasted})
    assert output["posts_analysed"] == 1 and output["rows_skipped"] == 1
    assert output["formats"] == [{"format": "video", "posts": 1, "mean_engagement_rate": 0.025}]
    assert output["best_hours"] == []  # dates without times say nothing about hours


async def test_dm_campaign_uses_the_topic_and_fields(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Jordan(),
        make_ctx(),
        {
            "action": "dm_campaign",
            "content_topic": "cold-chain monitoring",
            "target_audience": "pharmacy distributors",
            "personalization_fields": ["first_name", "company", "recent_post"],
            "campaign_goal": "a pilot at one depot",
            "sender_name": "Ana",
        },
    )
    messages = output["messages"]
    assert [m["type"] for m in messages] == ["connection_request", "follow_up", "value", "ask"]
    assert messages[0]["char_count"] <= 300
    assert "cold-chain monitoring" in messages[0]["template"] and "pharmacy distributors" in messages[0]["template"]
    assert "a pilot at one depot" in messages[-1]["template"]
    assert all("{first_name}" in m["template"] for m in messages)
    assert "recent_post" in messages[1]["fields"]
    page = report(output)
    assert page.get_element_by_id("messages").xpath(".//tbody/tr/td[4]/text()")[0] == messages[0]["template"]


def check(input_data: dict[str, object], files: list[InputFile] | None = None) -> dict[str, list[str]]:
    agent = Jordan()
    return agent.check_input(JordanInput.model_validate(input_data), JordanConfig(), files or [])


def csv_file(head: bytes) -> InputFile:
    return InputFile(id="file_1", filename="m.csv", type_name="csv", size_bytes=len(head), head=head)


def test_refusals_at_creation() -> None:
    assert check({"action": "engagement_analytics"}) == {
        "input_data.content": ["engagement_analytics needs post metrics: a CSV file (file_ids) or its text in content."]
    }
    assert check({"action": "engagement_analytics", "content": " \n"}) == {
        "input_data.content": ["The CSV is empty: export your post metrics with a header row and one row per post."]
    }
    assert check({"action": "engagement_analytics"}, [csv_file(b"")]) == {
        "file_ids.0": ["The CSV is empty: export your post metrics with a header row and one row per post."]
    }
    assert check({"action": "engagement_analytics"}, [csv_file(b"date,impressions\n")]) == {
        "file_ids.0": ["The CSV has a header but no posts."]
    }
    assert check({"action": "engagement_analytics", "content": "name,city\nA,B\n"}) == {
        "input_data.content": ["The CSV has no date column (date, post date or posted at)."]
    }
    assert check({"action": "engagement_analytics"}, [csv_file(METRICS.encode())]) == {}
    assert check({"action": "content_creation"}, [csv_file(METRICS.encode())]) == {
        "input_data.content_topic": ["content_topic is required for content_creation."],
        "file_ids.0": ["A CSV is read only by engagement_analytics."],
    }
    assert check({"action": "dm_campaign"}) == {
        "input_data.content_topic": ["content_topic is required for dm_campaign."]
    }
    assert check({"action": "profile_optimization"}) == {
        "input_data.content": ["profile_optimization needs the profile: its text in content, or url."]
    }
    assert check({"action": "dm_templates", "content_topic": "AI"}) == {}
    # A metrics export may be long; source material for posts stays at 100,000 characters as before.
    assert check({"content_topic": "AI", "content": "word " * 20_001}) == {
        "input_data.content": ["At most 100000 characters of source material for content_creation."]
    }
    assert check({"action": "engagement_analytics", "content": METRICS + "2026-09-20,text,x,1,1,1,1\n" * 5000}) == {}


async def test_profile_without_anything_to_work_from_fails(make_ctx: MakeContext) -> None:
    with pytest.raises(AgentInputError, match="no headline, about or experience"):
        await run_agent(Jordan(), make_ctx(), {"action": "profile_optimization", "content": "   \n\n"})


async def test_a_csv_the_reader_cannot_read_is_an_input_error(make_ctx: MakeContext) -> None:
    huge = "date,impressions,text\n2026-10-05,100,short\n2026-10-06,100," + "x" * 200_000 + "\n"
    with pytest.raises(AgentInputError, match="cannot be read as CSV"):
        await run_agent(Jordan(), make_ctx({"metrics.csv": huge.encode()}), {"action": "engagement_analytics"})


async def test_profile_wording_from_the_llm_when_configured(make_ctx: MakeContext, agent_settings: Settings) -> None:
    def answer(system: str, user: str) -> str | None:
        if "Fernwood Logistics" not in user:  # the prompt carries the profile
            return None
        return json_answer({"headline": "Data engineer for logistics teams", "about": "I build routing pipelines."})

    chat = ChatServer(answer)
    with serve(chat.app(), name="chat") as server:
        settings = agent_settings.model_copy(
            update={"llm_base_url": f"{server.url}/v1", "llm_api_key": SecretStr("sk-test"), "llm_model": "m"}
        )
        async with httpx.AsyncClient() as http:
            ctx = make_ctx(settings=settings, llm=llm.chat_completions(settings, http))
            output = await run_agent(Jordan(), ctx, {"action": "profile_optimization", "content": PROFILE})
    assert output["generated_by"] == "llm"
    assert output["headline"]["suggested"] == "Data engineer for logistics teams"
    assert output["about"]["suggested"] == "I build routing pipelines."
    assert output["experience"][0]["original"].startswith("Maintained")  # the rest stays the offline model's
