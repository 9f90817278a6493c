"""Sam's competitor_analysis (competitor pages on loopback, read through the guarded client) and review_responses:
content from the input, refusals at creation, and both rendered as HTML (lxml) and PDF (pypdf)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import lxml.html
import pypdf
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from backplane.agents.base import AgentInputError
from backplane.agents.sam import Sam, SamConfig, SamInput
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.fixtures.http_server import LoopbackServer, serve

OWN = (
    "<html><head><title>Joe's</title></head><body><h1>Welcome</h1>"
    "<p>We sell coffee in Seattle. Call (206) 555-0142.</p></body></html>"
)
RIVAL = (
    '<html><head><title>Bean &amp; Leaf Espresso Bar Seattle</title><meta name="viewport" content="width=device-width">'
    '<meta name="description" content="Seattle espresso bar on Capitol Hill with single-origin pour-over and '
    'oat milk lattes, open daily from 7am.">'
    "</head><body><h1>Espresso bar in Seattle</h1><h2>Our cafe</h2>"
    "<p>Single-origin pour-over, oat milk lattes and espresso. Single-origin pour-over every morning; "
    "oat milk lattes all day. Capitol Hill and Downtown Seattle.</p></body></html>"
)


@pytest.fixture
def sites() -> Iterator[LoopbackServer]:
    pages = {"/": OWN, "/rival": RIVAL}

    async def page(request: Request) -> Response:
        path = request.url.path
        return HTMLResponse(pages[path]) if path in pages else HTMLResponse("<h1>gone</h1>", status_code=404)

    with serve(Starlette(routes=[Route("/{path:path}", page)]), name="competitor-sites") as server:
        yield server


async def test_competitor_analysis(make_ctx: MakeContext, sites: LoopbackServer) -> None:
    output = await run_agent(
        Sam(),
        make_ctx(),
        samples.BUSINESS
        | {
            "action": "competitor_analysis",
            "website": f"{sites.url}/",
            "competitors": [f"{sites.url}/rival", f"{sites.url}/missing"],
        },
    )
    analysis = output["competitor_analysis"]
    rival, missing = analysis["competitors"]
    assert rival["title"] == "Bean & Leaf Espresso Bar Seattle"  # the competitor's own title
    assert rival["keywords_in_text"] == ["espresso", "cafe"]
    assert missing["error"].endswith("answered HTTP 404.")
    assert analysis["business"]["title"] == "Joe's"
    assert rival["seo_score"] > analysis["business"]["seo_score"]
    assert analysis["ranking"][0]["title"] == "Bean & Leaf Espresso Bar Seattle"
    gaps = {g["check"]: g for g in analysis["gaps"]}
    assert gaps["meta_description"]["competitors_ahead"] == ["Bean & Leaf Espresso Bar Seattle"]
    assert "viewport" in gaps and "https" not in gaps  # nobody is on HTTPS
    topics = [t["topic"].lower() for t in analysis["topic_gaps"]]
    assert "single-origin pour-over" in topics or "pour-over" in " ".join(topics)

    page = lxml.html.fromstring(Sam().render("html", output))
    titles = page.get_element_by_id("sites").xpath(".//tbody/tr/td[3]/text()")
    assert titles[:2] == ["Joe's", "Bean & Leaf Espresso Bar Seattle"]
    assert "answered HTTP 404" in titles[2]
    pdf = pypdf.PdfReader(io.BytesIO(Sam().render("pdf", output)))
    text = " ".join(p.extract_text() for p in pdf.pages)
    assert "Competitor analysis: Joe's Coffee Shop" in text and "Bean & Leaf Espresso Bar Seattle" in text


async def test_no_competitor_readable_fails(make_ctx: MakeContext, sites: LoopbackServer) -> None:
    with pytest.raises(AgentInputError, match="No competitor's site could be read"):
        await run_agent(
            Sam(),
            make_ctx(),
            samples.BUSINESS
            | {"action": "competitor_analysis", "website": f"{sites.url}/", "competitors": [f"{sites.url}/x"]},
        )


async def test_competitors_go_through_the_guarded_client(
    make_ctx: MakeContext, sites: LoopbackServer, agent_settings: Any
) -> None:
    guarded = make_ctx(settings=agent_settings.model_copy(update={"webhook_allow_private_targets": False}))
    with pytest.raises(AgentInputError, match="cannot be fetched"):
        await run_agent(
            Sam(),
            guarded,
            samples.BUSINESS
            | {"action": "competitor_analysis", "website": f"{sites.url}/", "competitors": [f"{sites.url}/rival"]},
        )


REVIEWS = [
    {"author": "Dana K.", "rating": 5, "text": "The cardamom latte is wonderful. Cardamom latte every Friday!"},
    {"author": "Omar", "rating": 3, "text": "Nice pastries but the queue was long. The queue needs work."},
    {"author": "Lee", "rating": 1, "text": "Burnt croissants and a rude barista. Burnt croissants twice."},
    {"text": "Terrible parking, awful wait"},
]


async def test_review_responses(make_ctx: MakeContext) -> None:
    output = await run_agent(Sam(), make_ctx(), {"action": "review_responses", **samples.BUSINESS, "reviews": REVIEWS})
    result = output["review_responses"]
    five, three, one, unrated = result["responses"]
    assert [r["sentiment"] for r in result["responses"]] == ["positive", "mixed", "negative", "negative"]
    assert five["response"].startswith("Thank you, Dana K.!") and "cardamom latte" in five["response"].lower()
    assert "queue" in three["response"].lower()
    assert "burnt croissants" in one["response"].lower() and "(206) 555-0142" in one["response"]
    assert one["respond_within_hours"] == 24
    assert unrated["rating"] is None and unrated["response"].startswith(
        "Hi there, we are sorry that parking and wait fell short"
    )
    assert result["summary"] == {
        "reviews": 4,
        "positive": 1,
        "mixed": 1,
        "negative": 2,
        "average_rating": 3.0,
    }
    assert "Joe's Coffee Shop" in result["templates"]["positive"]
    assert "{reviewer_name}" in result["templates"]["negative"]

    page = lxml.html.fromstring(Sam().render("html", output))
    cells = page.get_element_by_id("responses").xpath(".//tbody/tr/td[6]/text()")
    assert cells == [r["response"] for r in result["responses"]]
    pdf = pypdf.PdfReader(io.BytesIO(Sam().render("pdf", output)))
    assert "Review responses: Joe's Coffee Shop" in pdf.pages[0].extract_text()


def check(input_data: dict[str, Any]) -> dict[str, list[str]]:
    return Sam().check_input(SamInput.model_validate(samples.BUSINESS | input_data), SamConfig(), [])


def test_refusals_at_creation() -> None:
    assert check({}) == {"input_data.website": ["website is required for audit."]}
    assert check({"action": "competitor_analysis", "website": "https://joe.example"}) == {
        "input_data.competitors": ["competitor_analysis needs at least one competitor's URL."]
    }
    assert check(
        {"action": "competitor_analysis", "website": "https://joe.example", "competitors": ["ftp://rival"]}
    ) == {"input_data.competitors.0": ["The URL must use http or https."]}
    assert check({"action": "review_responses"}) == {
        "input_data.reviews": ["review_responses needs at least one review with a rating or text."]
    }
    assert check({"action": "review_responses", "reviews": [{"rating": 4}]}) == {}
