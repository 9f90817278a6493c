"""Sam's audit report, as HTML and as PDF (ReportLab): scores, prioritised recommendations, findings,
keyword coverage and name/address/phone consistency, all from the job's JSON output."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml.html import builder as E
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from backplane.agents.reports import html
from backplane.agents.reports.text import as_dict, as_list, clean


@dataclass(slots=True)
class _Report:
    """The audit as titled tables, shared by the HTML and the PDF."""

    title: str
    subtitle: str
    scores: Sequence[Sequence[str]]
    recommendations: Sequence[Sequence[str]]
    findings: Sequence[Sequence[str]]
    keywords: Sequence[Sequence[str]]
    nap_fields: list[str]
    nap: Sequence[Sequence[str]]


_SCORES = (
    ("seo_score", "SEO score"),
    ("gmb_score", "Business profile score"),
    ("citation_consistency", "Citation consistency"),
)
RECOMMENDATION_HEADERS = ("#", "Priority", "Category", "Action", "Expected impact")
FINDING_HEADERS = ("Check", "Score", "Category", "Result", "Points", "Detail")
KEYWORD_HEADERS = ("Keyword", "In title", "In headings", "Mentions in text")


def _points(check: dict[str, Any]) -> str:
    return f"{clean(check.get('points'))} / {clean(check.get('max_points'))}"


def _report(output: dict[str, Any]) -> _Report:
    audit = as_dict(output.get("audit_results"))
    business = clean(audit.get("business_name"))
    scores = [
        (label, "not measured" if audit.get(key) is None else f"{clean(audit.get(key))} / 100")
        for key, label in _SCORES
    ]
    recommendations = [
        (
            str(number),
            clean(r.get("priority")),
            clean(r.get("category")),
            clean(r.get("action")),
            clean(r.get("expected_impact")),
        )
        for number, r in enumerate((as_dict(r) for r in as_list(audit.get("recommendations"))), start=1)
    ]
    checks = [as_dict(c) for c in as_list(audit.get("checks"))]
    checks.sort(key=lambda c: bool(c.get("passed")))  # failed first, each group in the audit's order
    findings = [
        (
            clean(c.get("id")).replace("_", " "),
            clean(c.get("score")),
            clean(c.get("category")),
            "passed" if c.get("passed") else "failed",
            _points(c),
            clean(c.get("detail")),
        )
        for c in checks
    ]
    keywords = [
        (
            clean(k),
            clean(as_dict(v).get("in_title")),
            clean(as_dict(v).get("in_headings")),
            clean(as_dict(v).get("body_mentions")),
        )
        for k, v in as_dict(audit.get("keyword_coverage")).items()
    ]
    sources = as_dict(as_dict(audit.get("nap")).get("sources"))
    fields = sorted({f for outcome in sources.values() for f in as_dict(outcome)})
    nap = [
        (
            clean(source),
            *("agrees" if as_dict(outcome).get(f) else "differs" if f in as_dict(outcome) else "" for f in fields),
        )
        for source, outcome in sources.items()
    ]
    return _Report(
        title=f"Local SEO audit: {business}",
        subtitle=f"Website audited: {clean(audit.get('website'))}",
        scores=scores,
        recommendations=recommendations,
        findings=findings,
        keywords=keywords,
        nap_fields=fields,
        nap=nap,
    )


@dataclass(slots=True)
class _Part:
    """A titled table of a competitor analysis or of review responses (shared by the HTML and the PDF)."""

    id: str
    heading: str
    headers: tuple[str, ...]
    rows: Sequence[Sequence[str]]
    widths: tuple[float, ...]  # shares of the PDF's text width


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _competitor_parts(output: dict[str, Any]) -> tuple[str, str, list[_Part]]:
    analysis = as_dict(output.get("competitor_analysis"))
    business = as_dict(analysis.get("business"))
    sites = [business, *(as_dict(c) for c in as_list(analysis.get("competitors")))]
    compared = [
        (
            "this business" if number == 0 else f"competitor {number}",
            clean(s.get("url")),
            clean(s.get("error")) or clean(s.get("title")),
            clean(s.get("seo_score")),
            clean(s.get("gmb_score")),
            clean(s.get("word_count")),
            "" if s.get("error") else _yes(s.get("local_business_schema")),
            ", ".join(clean(k) for k in as_list(s.get("keywords_in_text"))),
        )
        for number, s in enumerate(sites)
    ]
    gaps = [
        (
            clean(g.get("priority")),
            clean(g.get("check")).replace("_", " "),
            ", ".join(clean(c) for c in as_list(g.get("competitors_ahead"))),
            clean(g.get("action")),
        )
        for g in (as_dict(g) for g in as_list(analysis.get("gaps")))
    ]
    topics = [
        (clean(t.get("topic")), ", ".join(clean(c) for c in as_list(t.get("competitors"))))
        for t in (as_dict(t) for t in as_list(analysis.get("topic_gaps")))
    ]
    parts = [
        _Part(
            "sites",
            "Sites compared",
            ("Site", "URL", "Title", "SEO score", "Profile score", "Words", "LocalBusiness data", "Keywords in text"),
            compared,
            (0.1, 0.18, 0.2, 0.08, 0.08, 0.08, 0.1, 0.18),
        ),
        _Part(
            "gaps",
            "Where competitors are ahead",
            ("Priority", "Check", "Competitors ahead", "Action"),
            gaps,
            (0.1, 0.2, 0.3, 0.4),
        ),
        _Part("topics", "Topics competitors cover and you do not", ("Topic", "Competitors"), topics, (0.4, 0.6)),
    ]
    title = f"Competitor analysis: {clean(analysis.get('business_name'))}"
    return title, f"Website: {clean(business.get('url'))}", parts


def _review_parts(output: dict[str, Any]) -> tuple[str, str, list[_Part]]:
    result = as_dict(output.get("review_responses"))
    summary = as_dict(result.get("summary"))
    responses = [
        (
            clean(r.get("review_number")),
            clean(r.get("author")),
            clean(r.get("rating")),
            clean(r.get("sentiment")),
            clean(r.get("excerpt")),
            clean(r.get("response")),
        )
        for r in (as_dict(r) for r in as_list(result.get("responses")))
    ]
    templates = [(clean(k), clean(v)) for k, v in as_dict(result.get("templates")).items()]
    parts = [
        _Part(
            "summary",
            "Summary",
            ("Measure", "Value"),
            [(k.replace("_", " "), clean(v)) for k, v in summary.items()],
            (0.5, 0.5),
        ),
        _Part(
            "responses",
            "Responses",
            ("#", "Reviewer", "Rating", "Sentiment", "Review", "Response"),
            responses,
            (0.05, 0.12, 0.07, 0.1, 0.26, 0.4),
        ),
        _Part("templates", "Templates by sentiment", ("Sentiment", "Template"), templates, (0.2, 0.8)),
    ]
    return f"Review responses: {clean(result.get('business_name'))}", "", parts


def _parts(output: dict[str, Any]) -> tuple[str, str, list[_Part]] | None:
    if "competitor_analysis" in output:
        return _competitor_parts(output)
    if "review_responses" in output:
        return _review_parts(output)
    return None


def _parts_html(title: str, subtitle: str, parts: list[_Part]) -> bytes:
    return html.document(
        title,
        E.H1(title),
        E.P(subtitle, **{"class": "meta"}),
        *(html.section(f"{p.id}-section", p.heading, html.table(p.id, p.headers, p.rows)) for p in parts),
    )


def _parts_pdf(title: str, subtitle: str, parts: list[_Part]) -> bytes:
    styles = _styles()
    width = A4[0] - 36 * mm
    story: list[Any] = [_paragraph(title, styles["title"]), _paragraph(subtitle, styles["body"])]
    for part in parts:
        story.append(_paragraph(part.heading, styles["heading"]))
        if part.rows:
            story.append(_table(part.headers, part.rows, [w * width for w in part.widths], styles))
        else:
            story.append(_paragraph("None.", styles["body"]))
    return _build(story, title)


def render_html(output: dict[str, Any]) -> bytes:
    if (parts := _parts(output)) is not None:
        return _parts_html(*parts)
    report = _report(output)
    recommendations = [(*row[:1], E.SPAN(row[1], **{"class": row[1]}), *row[2:]) for row in report.recommendations]
    findings = [(*row[:3], E.SPAN(row[3], **{"class": row[3]}), *row[4:]) for row in report.findings]
    return html.document(
        report.title,
        E.H1(report.title),
        E.P(report.subtitle, **{"class": "meta"}),
        html.section("scores-section", "Scores", html.table("scores", ["Score", "Value"], report.scores)),
        html.section(
            "recommendations-section",
            "Prioritised recommendations",
            html.table("recommendations", RECOMMENDATION_HEADERS, recommendations)
            if recommendations
            else E.P("Nothing to improve: every check passed."),
        ),
        html.section("findings-section", "Findings", html.table("findings", FINDING_HEADERS, findings)),
        html.section("keywords-section", "Keyword coverage", html.table("keywords", KEYWORD_HEADERS, report.keywords)),
        html.section(
            "nap-section",
            "Name, address and phone consistency",
            html.table("nap", ["Source", *report.nap_fields], report.nap),
        ),
    )


# Debian's fonts-dejavu-core (scripts/install-system-packages.sh installs it): embedded, it prints Latin,
# Greek and Cyrillic names; the standard Helvetica, which needs nothing, holds Latin-1 only.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


@lru_cache(maxsize=1)
def fonts() -> tuple[str, str]:
    """(regular, bold) font names: DejaVu Sans when installed, else Helvetica."""
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold"
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
    return "DejaVuSans", "DejaVuSans-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    regular, bold = fonts()

    return {
        "title": ParagraphStyle("title", parent=sheet["Title"], fontName=bold),
        "heading": ParagraphStyle("heading", parent=sheet["Heading2"], fontName=bold),
        "body": ParagraphStyle("body", parent=sheet["BodyText"], fontName=regular),
        "cell": ParagraphStyle("cell", parent=sheet["BodyText"], fontName=regular, fontSize=8, leading=10),
        "head": ParagraphStyle("head", parent=sheet["BodyText"], fontName=bold, fontSize=8, leading=10),
    }


def _paragraph(value: str, style: ParagraphStyle) -> Paragraph:
    # ReportLab's paragraphs read a small markup language: the text is escaped to stay text.
    return Paragraph(escape(value), style)


def _table(
    headers: tuple[str, ...] | list[str],
    rows: Sequence[Sequence[str]],
    widths: list[float],
    styles: dict[str, ParagraphStyle],
) -> Table:
    data = [[_paragraph(h, styles["head"]) for h in headers]]
    data += [[_paragraph(cell, styles["cell"]) for cell in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#d0d7de")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f6f8fa")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def render_pdf(output: dict[str, Any]) -> bytes:
    """A4, in DejaVu Sans (embedded, the glyphs used only) or, without it, the standard Helvetica."""
    if (parts := _parts(output)) is not None:
        return _parts_pdf(*parts)
    report = _report(output)
    styles = _styles()
    width = A4[0] - 36 * mm
    story: list[Any] = [_paragraph(report.title, styles["title"]), _paragraph(report.subtitle, styles["body"])]
    story += [
        _paragraph("Scores", styles["heading"]),
        _table(["Score", "Value"], report.scores, [width * 0.6, width * 0.4], styles),
    ]
    story.append(_paragraph("Prioritised recommendations", styles["heading"]))
    if report.recommendations:
        story.append(
            _table(
                RECOMMENDATION_HEADERS, report.recommendations, [w * width for w in (0.05, 0.1, 0.15, 0.5, 0.2)], styles
            )
        )
    else:
        story.append(_paragraph("Nothing to improve: every check passed.", styles["body"]))
    story += [
        _paragraph("Findings", styles["heading"]),
        _table(FINDING_HEADERS, report.findings, [w * width for w in (0.18, 0.08, 0.14, 0.1, 0.1, 0.4)], styles),
    ]
    if report.keywords:
        story += [
            _paragraph("Keyword coverage", styles["heading"]),
            _table(KEYWORD_HEADERS, report.keywords, [w * width for w in (0.4, 0.2, 0.2, 0.2)], styles),
        ]
    if report.nap:
        columns = len(report.nap_fields) + 1
        story += [
            _paragraph("Name, address and phone consistency", styles["heading"]),
            _table(["Source", *report.nap_fields], report.nap, [width / columns] * columns, styles),
        ]
    return _build(story, report.title)


def _build(story: list[Any], title: str) -> bytes:
    story.append(Spacer(1, 4 * mm))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="Sam - Local SEO",
        invariant=True,  # the same output gives the same bytes (no creation date or random id)
    )
    document.build(story)
    return buffer.getvalue()
