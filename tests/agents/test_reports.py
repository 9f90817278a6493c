"""Each agent's output rendered in its formats, parsed back with a real parser and compared with the JSON output."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from pypdf import PdfReader

from backplane.agents.jordan import Jordan
from backplane.agents.maya import Maya
from backplane.agents.reports.taylor import HEADER
from backplane.agents.sam import Sam
from backplane.agents.taylor import Taylor
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.sites import SiteState, business_app
from tests.fixtures.http_server import LoopbackServer, serve

SCRIPT = "<script>alert('x')</script>"


def squeeze(text: str) -> str:
    return " ".join(text.split())


def table_rows(document: Any, table_id: str) -> list[list[str]]:
    [table] = document.xpath(f"//table[@id='{table_id}']")
    return [[squeeze(cell.text_content()) for cell in row.xpath("td")] for row in table.xpath("tbody/tr")]


@pytest.fixture
def site() -> Iterator[tuple[SiteState, LoopbackServer]]:
    state = SiteState(samples.business_html(title=None, description=None))  # a site with findings to report
    with serve(business_app(state), name="business-site") as server:
        yield state, server


async def audit(make_ctx: MakeContext, server: LoopbackServer, **extra: Any) -> dict[str, Any]:
    return await run_agent(Sam(), make_ctx(), samples.BUSINESS | {"website": f"{server.url}/"} | extra)


async def test_sam_html_report_holds_the_audit(make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]) -> None:
    output = await audit(make_ctx, site[1])
    results = output["audit_results"]
    assert results["recommendations"], "the sample site has findings"
    document = lxml_html.fromstring(Sam().render("html", output))
    assert squeeze(document.xpath("//h1")[0].text_content()) == "Local SEO audit: Joe's Coffee Shop"
    scores = dict(table_rows(document, "scores"))
    assert scores["SEO score"] == f"{results['seo_score']} / 100"
    assert scores["Business profile score"] == f"{results['gmb_score']} / 100"
    assert scores["Citation consistency"] == f"{results['citation_consistency']} / 100"
    recommendations = table_rows(document, "recommendations")
    assert [(r[1], r[2], r[3], r[4]) for r in recommendations] == [
        (r["priority"], r["category"], r["action"], r["expected_impact"]) for r in results["recommendations"]
    ]
    findings = {row[0]: row for row in table_rows(document, "findings")}
    assert len(findings) == len(results["checks"])
    for check in results["checks"]:
        row = findings[check["id"].replace("_", " ")]
        assert row[3] == ("passed" if check["passed"] else "failed")
        assert row[4] == f"{check['points']} / {check['max_points']}"
    keywords = {row[0]: row for row in table_rows(document, "keywords")}
    assert set(keywords) == set(results["keyword_coverage"])
    assert keywords["espresso"][3] == str(results["keyword_coverage"]["espresso"]["body_mentions"])
    sections = [squeeze(h.text_content()) for h in document.xpath("//h2")]
    assert sections == [
        "Scores",
        "Prioritised recommendations",
        "Findings",
        "Keyword coverage",
        "Name, address and phone consistency",
    ]


async def test_sam_pdf_report_holds_the_audit(make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]) -> None:
    output = await audit(make_ctx, site[1])
    results = output["audit_results"]
    pdf = Sam().render("pdf", output)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None and reader.metadata.title == "Local SEO audit: Joe's Coffee Shop"
    text = squeeze(" ".join(page.extract_text() for page in reader.pages))
    assert "Local SEO audit: Joe's Coffee Shop" in text
    assert f"SEO score {results['seo_score']} / 100" in text
    assert f"Business profile score {results['gmb_score']} / 100" in text
    assert f"Citation consistency {results['citation_consistency']} / 100" in text
    position = 0
    for recommendation in results["recommendations"]:  # all of them, in their priority order
        found = text.find(squeeze(recommendation["action"]), position)
        assert found > position, recommendation["action"]
        position = found
    for heading in ("Prioritised recommendations", "Findings", "Keyword coverage"):
        assert heading in text
    assert Sam().render("pdf", output) == pdf, "the same output gives the same bytes"


async def test_sam_reports_keep_markup_from_the_input_as_text(
    make_ctx: MakeContext, site: tuple[SiteState, LoopbackServer]
) -> None:
    output = await audit(make_ctx, site[1], business_name=f"Joe's {SCRIPT} & <b>Bold</b>")
    page = Sam().render("html", output)
    assert b"<script>" not in page and b"<b>" not in page
    document = lxml_html.fromstring(page)
    assert document.xpath("//script | //b") == []
    assert f"Joe's {SCRIPT} & <b>Bold</b>" in document.xpath("//h1")[0].text_content()
    pdf = PdfReader(io.BytesIO(Sam().render("pdf", output)))
    assert f"{SCRIPT} & <b>Bold</b>" in pdf.pages[0].extract_text()


def test_the_pdf_prints_names_beyond_latin_1_in_an_embedded_font() -> None:
    # fonts-dejavu-core comes with scripts/install-system-packages.sh; Helvetica alone would drop these glyphs.
    name = "Кофейня Ωmega Café"
    output = {"audit_results": {"business_name": name, "seo_score": 50, "recommendations": []}}
    reader = PdfReader(io.BytesIO(Sam().render("pdf", output)))
    assert f"Local SEO audit: {name}" in reader.pages[0].extract_text()
    fonts = {str(font["/BaseFont"]) for font in reader.pages[0]["/Resources"]["/Font"].values()}
    assert any(f.endswith("DejaVuSans") or "+DejaVuSans" in f for f in fonts), fonts


def test_control_characters_from_extracted_text_do_not_break_a_report() -> None:
    output = {
        "audit_results": {
            "business_name": "Nul\x00 and bell\x07 and escape\x1b",
            "seo_score": 10,
            "checks": [{"id": "title_present", "passed": False, "points": 0, "max_points": 10, "detail": "\x0c"}],
            "recommendations": [
                {"priority": "high", "category": "on_page", "action": "Fix\x01 it", "expected_impact": ""}
            ],
        }
    }
    document = lxml_html.fromstring(Sam().render("html", output))
    assert squeeze(document.xpath("//h1")[0].text_content()) == "Local SEO audit: Nul and bell and escape"
    assert "Fix it" in PdfReader(io.BytesIO(Sam().render("pdf", output))).pages[0].extract_text()


async def test_jordan_report_holds_the_schedule_and_scores(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Jordan(),
        make_ctx(),
        {"content_topic": f"AI {SCRIPT}", "target_audience": "B2B marketers", "action": "content_calendar"},
    )
    page = Jordan().render("report", output)
    assert b"<script>" not in page
    document = lxml_html.fromstring(page)
    assert document.xpath("//script") == []
    assert squeeze(document.xpath("//h1")[0].text_content()) == f"LinkedIn analytics report: AI {SCRIPT}"
    posts = output["suggested_posts"]
    rows = table_rows(document, "schedule")
    assert [(r[1], r[2], r[3], r[4], float(r[5]), int(r[6])) for r in rows] == [
        (
            p["optimal_posting_time"],
            p["local_posting_time"],
            p["format"],
            p["predicted_engagement"],
            p["engagement_score"],
            p["char_count"],
        )
        for p in posts
    ]
    summary = dict(
        zip(
            [squeeze(t.text_content()) for t in document.xpath("//dl[@id='summary']/dt")],
            [squeeze(d.text_content()) for d in document.xpath("//dl[@id='summary']/dd")],
            strict=True,
        )
    )
    assert summary["Posts"] == str(len(posts))
    mean = sum(p["engagement_score"] for p in posts) / len(posts)
    assert float(summary["Mean engagement score"]) == pytest.approx(mean, abs=0.005)
    formats = {row[0]: int(row[1]) for row in table_rows(document, "formats")}
    assert sum(formats.values()) == len(posts)
    for number, post in enumerate(posts, start=1):
        [article] = document.xpath(f"//article[@id='post-{number}']")
        assert squeeze(post["content"]) in squeeze(article.text_content())


MAYA_SOURCE = (
    "Remote teams ship faster when they write things down. Written decisions survive time zones. "
    "A short weekly memo replaces three meetings. Documentation is a gift to your future colleagues. "
    "Start with one page and keep it current."
)


async def test_maya_markdown_and_text_hold_every_format(make_ctx: MakeContext) -> None:
    output = await run_agent(Maya(), make_ctx(), {"content": MAYA_SOURCE, "max_length": 120})
    tokens = MarkdownIt().parse(Maya().render("markdown", output).decode())
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[1:4] == ["Twitter/X thread", "LinkedIn post", "Newsletter"]
    paragraphs = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "paragraph_open"]
    for post in output["twitter_thread"]["posts"]:
        assert post["text"] in paragraphs
    newsletter = output["newsletter"]
    assert f"Subject: {newsletter['subject']}" in paragraphs
    for section in newsletter["sections"]:
        assert section["heading"] in headings
        assert section["body"] in paragraphs
    assert " ".join(output["hashtags"]) in paragraphs
    linkedin = squeeze(output["linkedin_post"]["text"])
    assert linkedin in squeeze(" ".join(paragraphs))

    text = Maya().render("text", output).decode()
    assert "Twitter/X thread\n----------------" in text
    for post in output["twitter_thread"]["posts"]:
        assert f"\n\n{post['text']}\n\n" in text
    assert output["linkedin_post"]["text"] in text
    assert not re.search(r"^#+ ", text, re.MULTILINE), "plain text has no Markdown headings"


INVOICE_RECORDS = {"document", "field", "line_item"}


async def test_taylor_csv_has_a_row_per_field_and_line_item(make_ctx: MakeContext) -> None:
    output = await run_agent(Taylor(), make_ctx({"invoice.pdf": samples.invoice_pdf()}), {"extraction_type": "invoice"})
    rendered = Taylor().render("csv", output)
    assert rendered.endswith(b"\r\n") and b"\r\n" in rendered.rstrip(b"\r\n"), "RFC 4180 line ends"
    rows = list(csv.reader(io.StringIO(rendered.decode(), newline="")))
    assert tuple(rows[0]) == HEADER
    records = [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]
    assert {r["record"] for r in records} == INVOICE_RECORDS
    fields = {r["name"]: r["value"] for r in records if r["record"] == "field"}
    data = output["extracted_data"]
    assert fields["invoice_number"] == data["invoice_number"] == samples.INVOICE_NUMBER
    assert fields["vendor"] == data["vendor"]
    assert float(fields["total"]) == data["total"] == samples.TOTAL
    items = [r for r in records if r["record"] == "line_item"]
    assert [(i["description"], float(i["quantity"]), float(i["amount"])) for i in items] == [
        (item["description"], item["quantity"], item["amount"]) for item in data["line_items"]
    ]
    assert len(items) == len(samples.ITEMS)
    document = {r["name"]: r["value"] for r in records if r["record"] == "document"}
    assert document["document_type"] == "invoice"
    assert float(document["confidence"]) == output["confidence"]


def test_taylor_csv_quotes_and_defuses_what_a_spreadsheet_would_run() -> None:
    output = {
        "extraction_type": "form_data",
        "extracted_data": {
            "fields": {"Name": 'Smith, "Jo"\nline two', "Formula": '=HYPERLINK("http://x")', "Balance": -5.0},
            "line_items": [{"description": "@SUM(A1)", "amount": -12.5}],
        },
    }
    rows = list(csv.reader(io.StringIO(Taylor().render("csv", output).decode(), newline="")))
    by_name = {row[1]: row for row in rows}
    assert by_name["Name"][2] == 'Smith, "Jo"\nline two'
    assert by_name["Formula"][2] == '\'=HYPERLINK("http://x")'
    assert by_name["Balance"][2] == "-5.0", "numbers stay numbers"
    [item] = [row for row in rows if row[0] == "line_item"]
    assert item[3] == "'@SUM(A1)" and item[6] == "-12.5"


ODD_OUTPUTS: list[dict[str, Any]] = [
    {},
    {"audit_results": "not a dict", "suggested_posts": "nor a list", "extracted_data": [1, 2]},
    {
        "audit_results": {"checks": [None, 1, {"id": None}], "recommendations": ["x"], "keyword_coverage": {"k": 3}},
        "suggested_posts": [None, {"engagement_score": "high", "hashtags": "#x"}, {"engagement_score": 0.9}],
        "twitter_thread": {"posts": [None, "text", {"text": None}]},
        "newsletter": {"sections": [None, {"heading": 1}]},
        "extracted_data": {"line_items": [None, {"amount": "12"}], "fields": ["a"], "nested": {"a": {"b": 1}}},
        "pages": "none",
    },
]


@pytest.mark.parametrize("output", ODD_OUTPUTS)
def test_renderers_take_outputs_of_unexpected_shapes(output: dict[str, Any]) -> None:
    """An output is JSON an LLM may have shaped: every rendering still comes out, never an exception."""
    for agent in (Maya(), Jordan(), Sam(), Taylor()):
        for name in agent.output_formats[1:]:
            assert agent.render(name, output)
