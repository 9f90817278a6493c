"""Sam: a local-SEO audit of a business's website, with scores and prioritised recommendations.

The pipeline fetches the website (SSRF-guarded) and checks what it really finds there
(`site.py` reads the page): the <title>, the meta description, headings, the viewport, image alt
texts, HTTPS, LocalBusiness structured data (JSON-LD or microdata), the business's name, address and
phone (NAP) on the page and in the structured data against the input, the primary keywords in the
title, headings and body, and the service area. Uploaded citation lists (CSV rows of name, address,
phone, source) and documents (pdf, docx) are compared with the same NAP.

Scores (0-100), each the sum of the points of the checks that passed (a partial check, such as
"2 of 3 keywords in the body", earns its share):
- `seo_score`: on-page search signals (title, description, headings, keywords, HTTPS, mobile, alt texts).
- `gmb_score`: how ready the site is to back a Google Business Profile: LocalBusiness data and its
  completeness, NAP on the page, a link to the profile, the service area, the city in the title.
- `citation_consistency`: the share of NAP comparisons (page, structured data, each citation) that agree.
Every failed check becomes a recommendation whose `expected_impact` is the points it would add.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from pydantic import Field, field_validator

from backplane.agents import local
from backplane.agents.base import (
    Agent,
    AgentContext,
    AgentInputError,
    AgentModel,
    FieldErrors,
    InputFile,
    web_url_problem,
)
from backplane.agents.documents import parse_file
from backplane.agents.reports import sam as reports
from backplane.agents.site import Site, normalize_address, normalize_name, phone_key, phones_in, read_site
from backplane.files.types import AGENT_FILES

_PRIORITY_ORDER = {"high": 0, "medium": 1, "low": 2}


class Review(AgentModel):
    author: str | None = Field(default=None, max_length=100, examples=["Dana K."])
    rating: int | None = Field(default=None, ge=1, le=5, description="Stars, 1 to 5 (the words decide without it).")
    text: str = Field(default="", max_length=5000, examples=["Great espresso, friendly staff, but slow on Sundays."])


class SamInput(AgentModel):
    action: Literal["audit", "competitor_analysis", "review_responses"] = Field(
        default="audit",
        description="audit: the site's local-SEO audit; competitor_analysis: the site against `competitors`, "
        "each read and scored the same way; review_responses: a reply for each of `reviews`.",
    )
    business_name: str = Field(min_length=1, max_length=200, examples=["Joe's Coffee Shop"])
    location: str = Field(
        min_length=2, max_length=200, description="City and region, as 'City, Region'.", examples=["Seattle, WA"]
    )
    website: str | None = Field(
        default=None,
        max_length=2048,
        description="The site to audit (required for audit and competitor_analysis).",
        examples=["https://joescoffee.com"],
    )
    competitors: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="competitor_analysis: competitors' sites (1 to 5 URLs).",
        examples=[["https://beanandleaf.example", "https://cornercafe.example"]],
    )
    reviews: list[Review] = Field(
        default_factory=list, max_length=50, description="review_responses: the reviews to answer (up to 50)."
    )
    gmb_url: str | None = Field(default=None, max_length=2048, description="The Google Business Profile URL.")
    primary_keywords: list[str] = Field(
        default_factory=list, max_length=20, examples=[["coffee shop", "espresso", "cafe"]]
    )
    service_area: list[str] = Field(
        default_factory=list,
        description="Areas served: a list or one comma-separated string.",
        examples=["Capitol Hill, Downtown Seattle"],
    )
    phone: str | None = Field(default=None, max_length=40, description="The business's phone, if known.")
    address: str | None = Field(default=None, max_length=300, description="Street address, if known.")

    @field_validator("service_area", mode="before")
    @classmethod
    def _split_areas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @field_validator("primary_keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        cleaned = [k.strip() for k in value if k.strip()]
        if any(len(k) > 100 for k in cleaned):
            raise ValueError("a keyword is at most 100 characters")
        return list(dict.fromkeys(cleaned))

    @property
    def city(self) -> str:
        return self.location.split(",")[0].strip()


class SamConfig(AgentModel):
    """sam has no options: everything it needs is in its input."""


@dataclass(slots=True)
class Check:
    id: str
    score: str  # "seo" or "gmb"
    category: str
    points: float
    priority: str
    action: str
    earned: float = 0.0
    detail: str = ""
    # A check that refines another ("description length" of "description present"): when both fail,
    # the parent's recommendation covers it and carries its points.
    parent: str | None = None

    @property
    def passed(self) -> bool:
        return self.earned >= self.points - 1e-9


class Sam(Agent):
    id = "sam"
    name = "Sam - Local SEO"
    description = (
        "Audits a local business's website: title, meta description, LocalBusiness structured data, "
        "name/address/phone consistency and keywords, with scores and prioritised recommendations."
    )
    input_model = SamInput
    config_model = SamConfig
    file_types, max_file_bytes = AGENT_FILES["sam"]
    inspected_types = frozenset({"csv"})
    output_formats = ("json", "html", "pdf")

    def check_input(self, input: SamInput, config: SamConfig, files: Sequence[InputFile]) -> FieldErrors:
        errors: FieldErrors = {}
        if input.action != "review_responses":
            if input.website is None:
                errors["input_data.website"] = [f"website is required for {input.action}."]
            elif problem := web_url_problem(input.website):
                errors["input_data.website"] = [problem]
        if input.action == "competitor_analysis":
            if not input.competitors:
                errors["input_data.competitors"] = ["competitor_analysis needs at least one competitor's URL."]
            for index, url in enumerate(input.competitors):
                if problem := web_url_problem(url):
                    errors[f"input_data.competitors.{index}"] = [problem]
        if input.action == "review_responses" and not any(r.text or r.rating for r in input.reviews):
            errors["input_data.reviews"] = ["review_responses needs at least one review with a rating or text."]
        for index, file in enumerate(files):
            if file.type_name == "csv" and file.head is not None and (problem := citation_list_problem(file)):
                errors[f"file_ids.{index}"] = [problem]
        return errors

    def render(self, format_name: str, output: dict[str, Any]) -> bytes:
        return reports.render_pdf(output) if format_name == "pdf" else reports.render_html(output)

    async def run(self, ctx: AgentContext, input: SamInput, config: SamConfig) -> dict[str, Any]:
        if input.action == "review_responses":
            return {
                "action": input.action,
                "review_responses": local.respond(input.reviews, input.business_name, input.city, input.phone),
            }
        if input.website is None:
            raise AgentInputError(f"website is required for {input.action}.")
        site = await _site(ctx, input.website)
        if input.action == "competitor_analysis":
            return await _competitors(ctx, input, site)
        citations = await _citations(ctx)
        checks = _checks(input, site)
        consistency, nap = _consistency(input, site, citations)
        if consistency is not None and consistency < 100:
            mismatched = sorted({f"{name} ({field})" for name, field in nap["mismatches"]})
            checks.append(
                Check(
                    "nap_consistency",
                    "citations",
                    "citations",
                    100 - consistency,
                    "high",
                    "Make the business name, address and phone identical everywhere: " + "; ".join(mismatched),
                    detail=f"{consistency}% of comparisons agree",
                )
            )
        seo = round(sum(c.earned for c in checks if c.score == "seo"))
        gmb = round(sum(c.earned for c in checks if c.score == "gmb"))
        recommendations = _recommendations(checks)
        return {
            "audit_results": {
                "business_name": input.business_name,
                "website": site.url,
                "seo_score": seo,
                "gmb_score": gmb,
                "citation_consistency": consistency,
                "keyword_coverage": _coverage(input, site),
                "nap": {k: v for k, v in nap.items() if k != "mismatches"},
                "checks": [
                    {
                        "id": c.id,
                        "score": c.score,
                        "category": c.category,
                        "passed": c.passed,
                        "points": round(c.earned, 1),
                        "max_points": c.points,
                        "detail": c.detail,
                    }
                    for c in checks
                    if c.id != "nap_consistency"
                ],
                "recommendations": recommendations,
            }
        }


async def _site(ctx: AgentContext, url: str) -> Site:
    page = await ctx.fetch(url)
    if page.status_code >= 400:
        raise AgentInputError(f"The website {url} answered HTTP {page.status_code}.")
    return await asyncio.to_thread(read_site, page.text, page.url)


async def _competitors(ctx: AgentContext, input: SamInput, own: Site) -> dict[str, Any]:
    """The business's site and each competitor's, read through the same guarded client and scored alike. A
    competitor that cannot be read is reported with its error; the others are still compared."""
    own_checks = _checks(input, own)
    rivals: list[tuple[Site, list[Check]]] = []
    entries: list[dict[str, Any]] = []
    for number, url in enumerate(input.competitors, start=1):
        await ctx.progress((number - 1) / len(input.competitors), f"reading competitor {number}")
        try:
            site = await _site(ctx, url)
        except AgentInputError as exc:
            entries.append({"url": url, "error": str(exc)})
            continue
        checks = _checks(input, site)
        rivals.append((site, checks))
        entries.append(local.site_summary(site, checks, input.primary_keywords))
    if not rivals:
        raise AgentInputError("No competitor's site could be read: " + "; ".join(e["error"] for e in entries))
    business = local.site_summary(own, own_checks, input.primary_keywords)
    field = [business, *(e for e in entries if "error" not in e)]
    ranking = sorted(field, key=lambda s: (-(s["seo_score"] + s["gmb_score"]), s["url"]))
    return {
        "action": input.action,
        "competitor_analysis": {
            "business_name": input.business_name,
            "business": business,
            "competitors": entries,
            "ranking": [
                {"url": s["url"], "title": s["title"], "seo_score": s["seo_score"], "gmb_score": s["gmb_score"]}
                for s in ranking
            ],
            "gaps": local.gaps((own, own_checks), rivals),
            "topic_gaps": local.topic_gaps(own, [site for site, _ in rivals]),
        },
    }


def _recommendations(checks: list[Check]) -> list[dict[str, str]]:
    """One per failed check, highest priority first, then by the points at stake."""
    failed = {c.id: c for c in checks if not c.passed}
    lost = {c.id: c.points - c.earned for c in failed.values()}
    for check in list(failed.values()):
        if check.parent in failed:
            lost[check.parent] += lost.pop(check.id)
            del failed[check.id]
    ordered = sorted(failed.values(), key=lambda c: (_PRIORITY_ORDER[c.priority], -lost[c.id], c.id))
    return [
        {"priority": c.priority, "category": c.category, "action": c.action, "expected_impact": _impact(c, lost[c.id])}
        for c in ordered
    ]


def _impact(check: Check, lost: float) -> str:
    name = "citation_consistency" if check.score == "citations" else f"{check.score}_score"
    return f"+{round(lost)} {name} points"


def _share(found: int, total: int) -> float:
    return found / total if total else 1.0


def _checks(input: SamInput, site: Site) -> list[Check]:
    checks: list[Check] = []
    keywords = [k.lower() for k in input.primary_keywords]
    title = (site.title or "").lower()
    city = input.city.lower()

    def add(check: Check, fraction: float, detail: str) -> None:
        check.earned = check.points * max(0.0, min(1.0, fraction))
        check.detail = detail
        checks.append(check)

    # On-page SEO (seo_score, 100 points).
    add(
        Check(
            "title_present", "seo", "on_page", 10, "high", "Add a <title> naming the business, its service and city."
        ),
        1.0 if site.title else 0.0,
        f"title: {site.title!r}" if site.title else "no <title>",
    )
    length = len(site.title or "")
    add(
        Check(
            "title_length",
            "seo",
            "on_page",
            5,
            "low",
            "Keep the <title> between 30 and 65 characters.",
            parent="title_present",
        ),
        1.0 if 30 <= length <= 65 else 0.0,
        f"{length} characters",
    )
    in_title = [k for k in keywords if k in title]
    add(
        Check(
            "title_keywords",
            "seo",
            "keywords",
            10,
            "high",
            f"Put your main keyword ({input.primary_keywords[0] if keywords else 'your service'}) in the <title>.",
        ),
        1.0 if in_title or not keywords else 0.0,
        f"keywords in title: {in_title}",
    )
    add(
        Check("title_location", "seo", "on_page", 5, "medium", f"Mention {input.city} in the <title>."),
        1.0 if city in title else 0.0,
        f"{input.city} {'in' if city in title else 'not in'} title",
    )
    description = site.meta_description or ""
    add(
        Check(
            "meta_description",
            "seo",
            "on_page",
            15,
            "high",
            "Add a meta description (70-160 characters) with your service, city and a reason to visit.",
        ),
        1.0 if description else 0.0,
        f"meta description: {description!r}" if description else "no meta description",
    )
    add(
        Check(
            "meta_description_length",
            "seo",
            "on_page",
            5,
            "low",
            "Write the meta description in 70-160 characters so search results show it whole.",
            parent="meta_description",
        ),
        1.0 if 70 <= len(description) <= 160 else 0.0,
        f"{len(description)} characters",
    )
    add(
        Check("single_h1", "seo", "on_page", 5, "medium", "Give the page exactly one <h1> heading."),
        1.0 if len(site.h1) == 1 else 0.0,
        f"{len(site.h1)} <h1> headings",
    )
    h1 = " ".join(site.h1).lower()
    add(
        Check("h1_keywords", "seo", "keywords", 5, "medium", "Use a primary keyword in the <h1> heading."),
        1.0 if not keywords or any(k in h1 for k in keywords) else 0.0,
        f"h1: {site.h1}",
    )
    body = site.body_text.lower()
    in_body = [k for k in keywords if k in body]
    missing_body = [k for k in input.primary_keywords if k.lower() not in body]
    add(
        Check(
            "body_keywords",
            "seo",
            "keywords",
            10,
            "high",
            f"Write about {', '.join(missing_body) or 'your keywords'} in the page's text.",
        ),
        _share(len(in_body), len(keywords)),
        f"{len(in_body)} of {len(keywords)} keywords in the text",
    )
    headings = " ".join(site.headings).lower()
    in_headings = [k for k in keywords if k in headings]
    add(
        Check("heading_keywords", "seo", "keywords", 5, "low", "Use your keywords in section headings (h2, h3)."),
        _share(len(in_headings), len(keywords)),
        f"{len(in_headings)} of {len(keywords)} keywords in headings",
    )
    add(
        Check("https", "seo", "technical", 10, "high", "Serve the site over HTTPS and redirect HTTP to it."),
        1.0 if site.url.startswith("https://") else 0.0,
        site.url,
    )
    add(
        Check(
            "viewport",
            "seo",
            "technical",
            5,
            "medium",
            'Add <meta name="viewport" content="width=device-width, initial-scale=1"> for mobile visitors.',
        ),
        1.0 if site.has_viewport else 0.0,
        "viewport meta present" if site.has_viewport else "no viewport meta",
    )
    add(
        Check("image_alt", "seo", "on_page", 5, "low", "Describe every image with an alt text."),
        _share(site.images_with_alt, site.images),
        f"{site.images_with_alt} of {site.images} images have alt text",
    )
    areas_on_page = [a for a in input.service_area if a.lower() in body]
    add(
        Check(
            "service_area_text",
            "seo",
            "keywords",
            5,
            "medium",
            f"Name the areas you serve ({', '.join(input.service_area)}) on the page.",
        ),
        _share(len(areas_on_page), len(input.service_area)),
        f"{len(areas_on_page)} of {len(input.service_area)} service areas on the page",
    )

    # Business-profile readiness (gmb_score, 100 points).
    business = site.local_business
    add(
        Check(
            "local_business_schema",
            "gmb",
            "structured_data",
            25,
            "high",
            "Add LocalBusiness structured data (JSON-LD) with name, address, phone, hours and geo coordinates.",
        ),
        1.0 if business is not None else 0.0,
        f"{business.type} found" if business is not None else "no LocalBusiness structured data",
    )
    if business is not None:
        fields = {
            "address": business.street or business.locality,
            "telephone": business.telephone,
            "openingHours": business.has_hours,
            "geo": business.has_geo,
            "url": business.url,
        }
        missing = [name for name, value in fields.items() if not value]
        add(
            Check(
                "schema_complete",
                "gmb",
                "structured_data",
                15,
                "medium",
                f"Complete the LocalBusiness data: add {', '.join(missing)}.",
            ),
            _share(len(fields) - len(missing), len(fields)),
            f"missing: {missing}",
        )
    else:
        add(
            Check(
                "schema_complete",
                "gmb",
                "structured_data",
                15,
                "medium",
                "Fill the new LocalBusiness data completely (address, telephone, openingHours, geo, url).",
                parent="local_business_schema",
            ),
            0.0,
            "no LocalBusiness structured data",
        )
    name_on_page = normalize_name(input.business_name) in normalize_name(f"{site.title or ''} {site.body_text}")
    add(
        Check(
            "name_on_page",
            "gmb",
            "citations",
            10,
            "high",
            f"Show the business name exactly as '{input.business_name}' on the page.",
        ),
        1.0 if name_on_page else 0.0,
        "found" if name_on_page else "not found",
    )
    add(
        Check(
            "phone_on_page",
            "gmb",
            "citations",
            10,
            "high",
            "Show the phone number as text with a tel: link, so mobile searchers can call.",
        ),
        1.0 if site.phones else 0.0,
        f"phones on page: {sorted(site.phones)}",
    )
    street_ok = input.address is None or normalize_address(input.address) in normalize_address(site.body_text)
    address_ok = city in body and street_ok
    add(
        Check(
            "address_on_page",
            "gmb",
            "citations",
            10,
            "high",
            f"Show the full address ({input.address or input.location}) on the page, as in your profile.",
        ),
        1.0 if address_ok else 0.0,
        "found" if address_ok else "address or city not on the page",
    )
    linked = bool(site.maps_links) or (input.gmb_url is not None and input.gmb_url in site.links)
    add(
        Check(
            "profile_link",
            "gmb",
            "gmb",
            10,
            "medium",
            "Link to your Google Business Profile (or embed its map) from the site.",
        ),
        1.0 if linked else 0.0,
        f"profile links: {site.maps_links}",
    )
    served = (business.area_served if business is not None else "").lower()
    area_hits = [a for a in input.service_area if a.lower() in served or a.lower() in body]
    add(
        Check(
            "service_area",
            "gmb",
            "gmb",
            10,
            "medium",
            "List your service areas in the LocalBusiness data (areaServed) and on the page.",
        ),
        _share(len(area_hits), len(input.service_area)),
        f"areas found: {area_hits}",
    )
    add(
        Check(
            "city_in_title",
            "gmb",
            "gmb",
            10,
            "medium",
            f"Put '{input.city}' in the page title so local searches match it.",
        ),
        1.0 if city in title else 0.0,
        f"{input.city} {'in' if city in title else 'not in'} title",
    )
    return checks


def _coverage(input: SamInput, site: Site) -> dict[str, dict[str, Any]]:
    title = (site.title or "").lower()
    headings = " ".join(site.h1 + site.headings).lower()
    body = site.body_text.lower()
    return {
        k: {
            "in_title": k.lower() in title,
            "in_headings": k.lower() in headings,
            "body_mentions": body.count(k.lower()),
        }
        for k in input.primary_keywords
    }


@dataclass(slots=True)
class Citation:
    source: str
    name: str | None
    address: str | None
    phone: str | None
    text: str | None = None  # a document's whole text, searched instead of fields


async def _citations(ctx: AgentContext) -> list[Citation]:
    out: list[Citation] = []
    for file in ctx.files:
        data = await ctx.read_file(file)
        if file.type_name == "csv":
            out += _csv_citations(file.filename, data)
        elif file.type_name in {"pdf", "docx"}:
            document = await ctx.parse(partial(parse_file, file.type_name, data), subject=file.filename)
            out.append(Citation(file.filename, None, None, None, document.text))
        else:
            raise AgentInputError(f"{file.filename}: Sam reads csv citation lists and pdf or docx documents.")
    return out


_COLUMNS = {
    "name": ("name", "business_name", "business", "company"),
    "address": ("address", "street", "street_address", "full_address"),
    "city": ("city", "locality", "town"),
    "phone": ("phone", "telephone", "phone_number", "tel"),
    "source": ("source", "site", "directory", "url", "platform"),
}


def citation_list_problem(file: InputFile) -> str | None:
    """Why a CSV citation list cannot be read (not UTF-8, no name/address/phone header, no rows), from its head."""
    assert file.head is not None
    head = file.head
    if file.size_bytes > len(head):  # the head may end inside a line (or a character): judge whole lines
        head = head[: head.rfind(b"\n") + 1] if b"\n" in head else head
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        return f"{file.filename}: not a readable UTF-8 CSV file."
    try:
        reader = csv.DictReader(io.StringIO(text))
        headers = {h.strip().lower().replace(" ", "_") for h in reader.fieldnames or [] if h}
        has_row = any(any(isinstance(v, str) and v.strip() for v in row.values()) for row in reader)
    except csv.Error:
        return f"{file.filename}: not a readable CSV file."
    if not headers & {n for key in ("name", "address", "phone") for n in _COLUMNS[key]}:
        return f"{file.filename}: a citation list needs a header with name, address or phone columns."
    if not has_row and file.size_bytes <= len(file.head):
        return f"{file.filename}: the citation list has no rows."
    return None


def _csv_citations(filename: str, data: bytes) -> list[Citation]:
    """Rows of a citation list: a header naming name/address/city/phone/source columns (any case)."""
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        headers = {h.strip().lower().replace(" ", "_"): h for h in reader.fieldnames or []}
        columns = {key: next((headers[n] for n in names if n in headers), None) for key, names in _COLUMNS.items()}
        if columns["name"] is None and columns["phone"] is None and columns["address"] is None:
            raise AgentInputError(f"{filename}: a citation list needs a header with name, address or phone columns.")
        rows = []
        for number, row in enumerate(reader, start=2):

            def cell(key: str, row: dict[str, Any] = row) -> str | None:
                column = columns[key]
                value = row.get(column) if column else None
                return value.strip() if isinstance(value, str) and value.strip() else None

            address = " ".join(p for p in (cell("address"), cell("city")) if p) or None
            rows.append(Citation(cell("source") or f"{filename}:{number}", cell("name"), address, cell("phone")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AgentInputError(f"{filename}: not a readable UTF-8 CSV file.") from exc
    return rows


def _consistency(input: SamInput, site: Site, citations: list[Citation]) -> tuple[int | None, dict[str, Any]]:
    """NAP agreement across the page, its structured data and the citations, in percent (None: nothing to compare)."""
    business = site.local_business
    reference_phone = phone_key(input.phone) or (phone_key(business.telephone) if business else None)
    if reference_phone is None and site.phones:
        reference_phone = sorted(site.phones)[0]
    name = normalize_name(input.business_name)
    city = normalize_name(input.city)
    street = (
        normalize_address(input.address)
        if input.address
        else (normalize_address(business.street) if business and business.street else None)
    )
    results: dict[str, dict[str, bool]] = {}

    def compare(source: str, got_name: str | None, got_address: str | None, got_phone: str | None) -> None:
        outcome: dict[str, bool] = {}
        outcome["name"] = got_name is not None and normalize_name(got_name) == name
        address = normalize_address(got_address or "")
        outcome["address"] = city in normalize_name(got_address or "") and (street is None or street in address)
        if reference_phone is not None:
            outcome["phone"] = phone_key(got_phone) == reference_phone
        results[source] = outcome

    page_text = f"{site.title or ''} {site.body_text}"
    page: dict[str, bool] = {
        "name": name in normalize_name(page_text),
        "address": city in normalize_name(page_text) and (street is None or street in normalize_address(page_text)),
    }
    if reference_phone is not None:
        page["phone"] = reference_phone in site.phones
    results["website"] = page
    if business is not None:
        compare(
            "structured_data",
            business.name,
            " ".join(p for p in (business.street, business.locality, business.region) if p),
            business.telephone,
        )
    for citation in citations:
        if citation.text is not None:
            text = citation.text
            found = {
                "name": name in normalize_name(text),
                "address": city in normalize_name(text) and (street is None or street in normalize_address(text)),
            }
            if reference_phone is not None:
                found["phone"] = reference_phone in {phone_key(p) for p in phones_in(text)}
            results[citation.source] = found
        else:
            compare(citation.source, citation.name, citation.address, citation.phone)
    comparisons = [(source, field, ok) for source, fields in results.items() for field, ok in fields.items()]
    mismatches = [(source, field) for source, field, ok in comparisons if not ok]
    score = round(100 * sum(ok for *_, ok in comparisons) / len(comparisons)) if comparisons else None
    return score, {
        "reference": {"name": input.business_name, "city": input.city, "street": street, "phone": reference_phone},
        "sources": results,
        "mismatches": mismatches,
    }
