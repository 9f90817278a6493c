"""Sam audits a small business's site served on loopback; its findings follow what the page really holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backplane.agents.base import AgentInputError
from backplane.agents.sam import Sam, SamConfig, SamInput
from backplane.agents.site import normalize_address, phone_key, read_site
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.sites import SiteState, business_app
from tests.fixtures.http_server import LoopbackServer, serve

META_ACTION = "Add a meta description (70-160 characters) with your service, city and a reason to visit."
SCHEMA_ACTION = "Add LocalBusiness structured data (JSON-LD) with name, address, phone, hours and geo coordinates."
HTTPS = {
    "priority": "high",
    "category": "technical",
    "action": "Serve the site over HTTPS and redirect HTTP to it.",
    "expected_impact": "+10 seo_score points",
}
HEADINGS = {
    "priority": "low",
    "category": "keywords",
    "action": "Use your keywords in section headings (h2, h3).",
    "expected_impact": "+3 seo_score points",
}
ORDER = {"high": 0, "medium": 1, "low": 2}


@pytest.fixture
def site() -> Iterator[tuple[SiteState, LoopbackServer]]:
    state = SiteState(samples.business_html())
    with serve(business_app(state), name="business-site") as server:
        yield state, server


async def audit(make_ctx: MakeContext, url: str, files: dict[str, bytes] | None = None, **extra: Any) -> dict[str, Any]:
    output = await run_agent(Sam(), make_ctx(files), samples.BUSINESS | {"website": url} | extra)
    assert set(output) == {"audit_results"}
    results = output["audit_results"]
    priorities = [ORDER[r["priority"]] for r in results["recommendations"]]
    assert priorities == sorted(priorities), "recommendations are sorted by priority"
    return results


async def test_well_kept_site(make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]) -> None:
    _, server = site
    results = await audit(make_ctx, f"{server.url}/")

    assert results["gmb_score"] == 100
    assert results["citation_consistency"] == 100
    assert results["seo_score"] == 87  # 100 - 10 (no HTTPS on loopback) - 3 ("cafe" in no heading)
    assert results["recommendations"] == [HTTPS, HEADINGS]
    assert results["keyword_coverage"]["coffee shop"] == {"in_title": True, "in_headings": True, "body_mentions": 3}
    assert results["keyword_coverage"]["cafe"] == {"in_title": False, "in_headings": False, "body_mentions": 1}
    assert results["nap"]["reference"] == {
        "name": "Joe's Coffee Shop",
        "city": "Seattle",
        "street": "123 pine st",
        "phone": "2065550142",
    }
    assert results["nap"]["sources"] == {
        "website": {"name": True, "address": True, "phone": True},
        "structured_data": {"name": True, "address": True, "phone": True},
    }
    checks = {c["id"]: c for c in results["checks"]}
    assert checks["local_business_schema"]["detail"] == "CafeOrCoffeeShop found"
    assert checks["meta_description"]["passed"] is True
    assert sum(c["points"] for c in results["checks"] if c["score"] == "seo") == pytest.approx(87, abs=0.5)


async def test_findings_follow_the_page(make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]) -> None:
    state, server = site
    state.html = samples.business_html(description=None)
    results = await audit(make_ctx, f"{server.url}/")
    meta = [r for r in results["recommendations"] if r["action"] == META_ACTION]
    assert meta == [
        {"priority": "high", "category": "on_page", "action": META_ACTION, "expected_impact": "+20 seo_score points"}
    ]
    assert results["seo_score"] == 67

    state.html = samples.business_html(with_json_ld=False, phone="(206) 555-9999")
    results = await audit(make_ctx, f"{server.url}/")
    assert not any(r["action"] == META_ACTION for r in results["recommendations"])
    assert results["gmb_score"] == 60  # no LocalBusiness data (25) nor its fields (15)
    assert results["citation_consistency"] == 67  # the page's phone disagrees
    assert results["recommendations"][:2] == [
        {
            "priority": "high",
            "category": "structured_data",
            "action": SCHEMA_ACTION,
            "expected_impact": "+40 gmb_score points",
        },
        {
            "priority": "high",
            "category": "citations",
            "action": "Make the business name, address and phone identical everywhere: website (phone)",
            "expected_impact": "+33 citation_consistency points",
        },
    ]

    state.html = samples.business_html(title=None, json_ld=samples.business_json_ld(name="Joes Cafe", geo=None))
    results = await audit(make_ctx, f"{server.url}/")
    actions = {r["action"]: r for r in results["recommendations"]}
    assert (
        actions["Add a <title> naming the business, its service and city."]["expected_impact"] == "+15 seo_score points"
    )
    assert actions["Complete the LocalBusiness data: add geo."]["priority"] == "medium"
    assert "structured_data (name)" in next(a for a in actions if a.startswith("Make the business name"))
    assert results["nap"]["sources"]["structured_data"] == {"name": False, "address": True, "phone": True}


async def test_citation_list_is_compared(make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]) -> None:
    _, server = site
    citations = (
        b"Source,Business Name,Address,City,Phone\n"
        b"Yelp,Joe's Coffee Shop,123 Pine St,Seattle,206-555-0142\n"
        b"YellowPages,Joes Coffee,123 Pine Street,Seattle,(206) 555-0100\n"
    )
    results = await audit(make_ctx, f"{server.url}/", {"citations.csv": citations})

    assert results["nap"]["sources"]["Yelp"] == {"name": True, "address": True, "phone": True}
    assert results["nap"]["sources"]["YellowPages"] == {"name": False, "address": True, "phone": False}
    assert results["citation_consistency"] == 83  # 10 of 12 comparisons agree
    action = next(r for r in results["recommendations"] if r["category"] == "citations")
    assert action["action"].endswith("YellowPages (name); YellowPages (phone)")
    assert action["expected_impact"] == "+17 citation_consistency points"


async def test_unreachable_or_refused_sites_are_input_errors(
    make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer], settings: Any
) -> None:
    _, server = site
    with pytest.raises(AgentInputError, match=r"answered HTTP 500"):
        await audit(make_ctx, f"{server.url}/broken")
    guarded = make_ctx(settings=settings)  # WEBHOOK_ALLOW_PRIVATE_TARGETS off
    with pytest.raises(AgentInputError, match=r"cannot be fetched: The URL points at a private, loopback"):
        await run_agent(Sam(), guarded, samples.BUSINESS | {"website": f"{server.url}/"})
    with pytest.raises(AgentInputError, match=r"citation list needs a header"):
        await audit(make_ctx, f"{server.url}/", {"list.csv": b"foo,bar\n1,2\n"})


def test_page_reading_rules() -> None:
    html = samples.business_html(
        json_ld='{"@context": "https://schema.org", "@graph": [{"@type": "WebSite"}, '
        '{"@type": ["LocalBusiness"], "name": "X", "address": "1 Main St"}]}'
    )
    page = read_site(html, "https://x.example/")
    assert page.local_business is not None and page.local_business.street == "1 Main St"
    assert page.phones == {"2065550142"}
    assert page.maps_links == ["https://maps.google.com/?cid=123"]
    broken = read_site(samples.business_html(json_ld="{not json"), "https://x.example/")
    assert broken.local_business is None and broken.structured_data_errors[0].startswith("invalid JSON-LD")
    microdata = read_site(
        '<div itemscope itemtype="https://schema.org/Dentist"><span itemprop="name">Dr Tooth</span>'
        '<span itemprop="telephone">+44 20 7946 0958</span></div>',
        "https://x.example/",
    )
    assert microdata.local_business is not None
    assert (microdata.local_business.type, microdata.local_business.name) == ("Dentist", "Dr Tooth")
    assert normalize_address("123 North Pine Street, Suite 4") == "123 n pine st ste 4"
    assert phone_key("+1 (206) 555-0142") == phone_key("206.555.0142") == "2065550142"


def test_input_shapes() -> None:
    parsed = SamInput.model_validate(samples.BUSINESS | {"website": "https://joescoffee.example"})
    assert parsed.service_area == ["Capitol Hill", "Downtown Seattle"]
    assert parsed.city == "Seattle"
    camel = SamInput.model_validate(
        {"businessName": "A", "location": "Lyon, FR", "website": "https://a.example", "primaryKeywords": ["bread"]}
    )
    assert (camel.business_name, camel.primary_keywords) == ("A", ["bread"])
    # The audit needs the website: refused at creation, naming it (review_responses does not need it).
    without_site = SamInput.model_validate({"business_name": "A", "location": "Lyon"})
    assert Sam().check_input(without_site, SamConfig(), []) == {
        "input_data.website": ["website is required for audit."]
    }


def test_absurdly_nested_json_ld_is_reported_not_crashed_on() -> None:
    from backplane.agents.site import _json_ld_items

    errors: list[str] = []
    assert _json_ld_items("[" * 100_000 + "]" * 100_000, errors) == []
    assert errors == ["invalid JSON-LD: nested too deeply"]
