"""Jordan: LinkedIn post ideas for a topic and audience, scheduled on a posting-time model and scored.

Offline pipeline: the topic, the audience and any source material (text, a URL, txt/md files) give
key terms (hashtags) and key sentences (points); each post takes one of five formats (list, question,
how-to, lesson, contrarian take) filled with them, in the chosen tone. With an LLM configured, the
posts' text is drafted by the LLM instead (the offline text is the fallback); hashtags, times and
engagement always come from the models below.

Posting-time model: LinkedIn posts by business audiences are read most on Tuesday, Wednesday and
Thursday mornings, as people start their working day. Posts go at 09:00 in the audience's time zone
(`timezone`), on successive Tuesdays, Wednesdays and Thursdays, starting with the first such slot at
least an hour from now; 08:00 is used on a day whose 09:00 is already too close. `SLOT_WEIGHTS`
scores any slot for the engagement model.

Engagement model: a weighted score of six features, each 0..1: the post's format (a list or a
question draws more comments than a statement), its length (900-2,000 characters does best; less
reads as thin, more is cut behind "see more"), 3-5 hashtags, a closing question, the time slot
(`slot_weight`), and specifics (numbers or facts from the source material). ≥ 0.85 is "high",
≥ 0.70 "medium", below that "low".
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from backplane.agents import linkedin, llm
from backplane.agents.base import (
    Agent,
    AgentContext,
    AgentInputError,
    AgentModel,
    FieldErrors,
    InputFile,
    web_url_problem,
)
from backplane.agents.documents import parse_file, parse_html, parse_plain
from backplane.agents.reports import jordan as reports
from backplane.agents.site import read_site
from backplane.agents.text import Scorer, hashtag, is_stop_word, key_terms, sentences, words
from backplane.agents.tone import VOICES, Tone, voiced
from backplane.files.types import AGENT_FILES

PRIME_WEEKDAYS = (1, 2, 3)  # Tuesday, Wednesday, Thursday (Monday is 0)
PRIME_HOURS = (9, 8)  # preferred first
LEAD_TIME = timedelta(hours=1)
_WEEKDAY_WEIGHTS = (0.75, 1.0, 1.0, 0.95, 0.7, 0.3, 0.3)
_HOUR_WEIGHTS = {7: 0.8, 8: 1.0, 9: 1.0, 10: 0.9, 11: 0.8, 12: 0.85, 13: 0.75, 17: 0.75}
_FORMAT_WEIGHTS = {"list": 0.9, "question": 0.9, "how_to": 0.85, "lesson": 0.8, "contrarian": 0.8}
_FEATURE_WEIGHTS = {"format": 0.25, "length": 0.2, "hashtags": 0.15, "question": 0.15, "timing": 0.15, "specifics": 0.1}
ACTIONS = ("content_creation", "content_calendar", "profile_optimization", "engagement_analytics", "dm_campaign")
MAX_MATERIAL = 100_000  # characters of source material (a metrics CSV, for engagement_analytics, may be longer)
_TOPIC_ACTIONS = frozenset({"content_creation", "content_calendar", "dm_campaign"})


def slot_weight(local: datetime) -> float:
    """How good a local posting time is: weekday weight x hour weight (0.5 outside the listed hours)."""
    return _WEEKDAY_WEIGHTS[local.weekday()] * _HOUR_WEIGHTS.get(local.hour, 0.5)


def posting_slots(now: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
    """The next `count` prime slots (one per day, Tue-Thu 09:00, or 08:00 when 09:00 is too close), in UTC."""
    earliest = now + LEAD_TIME
    day = earliest.astimezone(zone).date()
    slots: list[datetime] = []
    while len(slots) < count:
        if day.weekday() in PRIME_WEEKDAYS:
            for hour in PRIME_HOURS:
                local = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
                if local >= earliest:
                    slots.append(local.astimezone(UTC))
                    break
        day += timedelta(days=1)
    return slots


class JordanInput(AgentModel):
    action: Literal[
        "content_creation", "content_calendar", "profile_optimization", "engagement_analytics", "dm_campaign"
    ] = Field(
        default="content_creation",
        description="content_creation: a few posts; content_calendar: a schedule of posts (default 5); "
        "profile_optimization: headline, about and experience suggestions for the profile in `url` or "
        "`content`; engagement_analytics: best times, formats, topics and trend from a CSV export of post "
        "metrics (a csv file or `content`); dm_campaign: a message sequence with personalisation fields.",
    )
    content_topic: str | None = Field(
        default=None,
        min_length=2,
        max_length=200,
        description="What the posts (or the messages of a dm_campaign) are about; required for content_creation, "
        "content_calendar and dm_campaign. For profile_optimization, the focus the profile should show.",
        examples=["AI in marketing"],
    )
    target_audience: str = Field(default="professionals", min_length=2, max_length=200, examples=["B2B marketers"])
    tone: Tone = Field(default=Tone.professional, examples=["thought_leadership"])
    timezone: str = Field(
        default="UTC",
        description="The audience's IANA time zone; posting times are chosen in it.",
        examples=["America/New_York"],
    )
    post_count: int | None = Field(default=None, ge=1, le=10, description="Posts to suggest (3, or 5 for a calendar).")
    content: str | None = Field(
        default=None,
        max_length=1_000_000,
        description="Source material (notes, an article) to draw points from; for profile_optimization the "
        "pasted profile text; for engagement_analytics the CSV export's text.",
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        description="A public page to draw points from; for profile_optimization the profile's URL.",
    )
    personalization_fields: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="dm_campaign: the fields each message leaves for the sender to fill "
        "(default first_name, company, role).",
        examples=[["first_name", "company", "recent_post"]],
    )
    campaign_goal: str | None = Field(
        default=None, max_length=200, description="dm_campaign: what the last message asks for."
    )
    sender_name: str | None = Field(default=None, max_length=100, description="dm_campaign: the signature.")

    @field_validator("action", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return "dm_campaign" if value == "dm_templates" else value

    @field_validator("personalization_fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z_]{0,29}", name):
                raise ValueError(f"a personalisation field is lowercase letters and underscores, not {name!r}")
        return list(dict.fromkeys(value))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris") from None
        return value


class JordanConfig(AgentModel):
    hashtags_per_post: int = Field(default=3, ge=0, le=5)


class Jordan(Agent):
    id = "jordan"
    name = "Jordan - LinkedIn Growth"
    description = (
        "Suggests LinkedIn posts for a topic and audience, each with hashtags, an optimal posting time "
        "(Tue-Thu mornings in the audience's time zone) and a predicted engagement band."
    )
    input_model = JordanInput
    config_model = JordanConfig
    file_types, max_file_bytes = AGENT_FILES["jordan"]
    output_formats = ("json", "report")

    inspected_types = frozenset({"csv"})

    def check_input(self, input: JordanInput, config: JordanConfig, files: Sequence[InputFile]) -> FieldErrors:
        errors: FieldErrors = {}
        if input.url is not None and (problem := web_url_problem(input.url)):
            errors["input_data.url"] = [problem]
        if input.action in _TOPIC_ACTIONS and not input.content_topic:
            errors["input_data.content_topic"] = [f"content_topic is required for {input.action}."]
        analytics = input.action == "engagement_analytics"
        for index, file in enumerate(files):
            if analytics and file.type_name != "csv":
                errors[f"file_ids.{index}"] = ["engagement_analytics reads a CSV export of post metrics."]
            elif not analytics and file.type_name == "csv":
                errors[f"file_ids.{index}"] = ["A CSV is read only by engagement_analytics."]
            elif file.type_name == "csv" and file.head is not None and (problem := _csv_head_problem(file.head)):
                errors[f"file_ids.{index}"] = [problem]
        if analytics:
            if input.content is not None and (problem := linkedin.csv_problem(input.content[:65536])):
                errors["input_data.content"] = [problem]
            elif input.content is None and not files:
                errors["input_data.content"] = [
                    "engagement_analytics needs post metrics: a CSV file (file_ids) or its text in content."
                ]
        if not analytics and input.content is not None and len(input.content) > MAX_MATERIAL:
            errors["input_data.content"] = [f"At most {MAX_MATERIAL} characters of source material for {input.action}."]
        if input.action == "profile_optimization" and not (input.content or input.url or files):
            errors["input_data.content"] = ["profile_optimization needs the profile: its text in content, or url."]
        return errors

    def render(self, format_name: str, output: dict[str, Any]) -> bytes:
        return reports.report(output)

    async def run(self, ctx: AgentContext, input: JordanInput, config: JordanConfig) -> dict[str, Any]:
        if input.action == "profile_optimization":
            return await _profile(ctx, input)
        if input.action == "engagement_analytics":
            return await _analytics(ctx, input)
        if not input.content_topic:
            raise AgentInputError(f"content_topic is required for {input.action}.")
        if input.action == "dm_campaign":
            return {
                "action": input.action,
                "content_topic": input.content_topic,
                "target_audience": input.target_audience,
                **linkedin.dm_templates(
                    input.content_topic,
                    input.target_audience,
                    input.campaign_goal,
                    input.personalization_fields,
                    input.sender_name,
                ),
                "generated_by": "offline",
            }
        material = await _material(ctx, input)
        count = input.post_count or (5 if input.action == "content_calendar" else 3)
        now = ctx.now() if ctx.now is not None else datetime.now(UTC)
        zone = ZoneInfo(input.timezone)
        slots = posting_slots(now, zone, count)
        points, tags = await asyncio.to_thread(_analyse, input, material, config.hashtags_per_post)
        facts = bool(points)
        drafts = await _llm_posts(ctx, input, material, count)
        posts = []
        for index, slot in enumerate(slots):
            form = FORMATS[index % len(FORMATS)]
            own = points[index * 2 : index * 2 + 3] or points[:3]
            offline = _write(form, input, own, index)
            content = drafts[index] if drafts else offline
            post_tags = _rotate(tags, index, config.hashtags_per_post)
            score = engagement_score(form, content, post_tags, slot.astimezone(zone), facts)
            posts.append(
                {
                    "content": content,
                    "hashtags": post_tags,
                    "optimal_posting_time": slot.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "local_posting_time": slot.astimezone(zone).isoformat(),
                    "predicted_engagement": band(score),
                    "engagement_score": round(score, 2),
                    "format": form,
                    "char_count": len(content),
                }
            )
        return {
            "action": input.action,
            "content_topic": input.content_topic,
            "target_audience": input.target_audience,
            "timezone": input.timezone,
            "suggested_posts": posts,
            "generated_by": "llm" if drafts else "offline",
        }


def _csv_head_problem(head: bytes) -> str | None:
    return linkedin.csv_problem(head.decode("utf-8-sig", errors="replace"))


async def _profile(ctx: AgentContext, input: JordanInput) -> dict[str, Any]:
    if input.url:
        page = await ctx.fetch(input.url)
        if page.status_code >= 400:
            raise AgentInputError(f"The profile at {input.url} answered HTTP {page.status_code}.")
        site = await asyncio.to_thread(read_site, page.text, page.url)
        document = await asyncio.to_thread(parse_html, page.text, page.url)
        profile = linkedin.profile_from_page(
            document, site.h1[0] if site.h1 else None, site.meta_description or site.title
        )
    else:
        profile = linkedin.profile_from_text(await _text(ctx, input))
    result = await asyncio.to_thread(linkedin.optimize_profile, profile, input.target_audience, input.content_topic)
    drafted = await _llm_profile(ctx, input, profile)
    if drafted is not None:
        result["headline"]["suggested"], result["about"]["suggested"] = drafted
    return {
        "action": input.action,
        "target_audience": input.target_audience,
        "source": input.url or "text",
        **result,
        "generated_by": "llm" if drafted else "offline",
    }


async def _llm_profile(ctx: AgentContext, input: JordanInput, profile: linkedin.Profile) -> tuple[str, str] | None:
    """The LLM's wording of the suggested headline and about (the issues and the rest stay the offline model's)."""
    if ctx.llm is None:
        return None
    answer = await llm.draft_json(
        ctx,
        "You are Jordan, a LinkedIn profile editor.",
        'Rewrite this LinkedIn profile\'s headline and about section as {"headline": "...", "about": "..."} for '
        f"{input.target_audience}"
        + (f", focused on {input.content_topic}" if input.content_topic else "")
        + f". Headline at most {linkedin.HEADLINE_LIMIT} characters, about at most {linkedin.ABOUT_LIMIT}; "
        "keep to the facts given.\n\n"
        + f"Headline: {profile.headline}\nAbout: {profile.about[:4000]}\nExperience:\n"
        + "\n".join(profile.experience[:20]),
    )
    if not isinstance(answer, dict):
        return None
    headline, about = answer.get("headline"), answer.get("about")
    if not (isinstance(headline, str) and isinstance(about, str)):
        return None
    headline, about = headline.strip(), about.strip()
    if not (0 < len(headline) <= linkedin.HEADLINE_LIMIT and 0 < len(about) <= linkedin.ABOUT_LIMIT):
        return None
    return headline, about


async def _text(ctx: AgentContext, input: JordanInput) -> str:
    """The content and the text of the txt/md files, as written (lines kept: a profile's sections are lines)."""
    parts = [input.content or ""]
    for file in ctx.files:
        if file.type_name not in {"txt", "md"}:
            raise AgentInputError(f"{file.filename}: this action reads only txt and md files.")
        parts.append((await ctx.read_file(file)).decode("utf-8-sig", errors="replace"))
    return "\n\n".join(p for p in parts if p.strip())


async def _analytics(ctx: AgentContext, input: JordanInput) -> dict[str, Any]:
    exports = [input.content] if input.content else []
    for file in ctx.files:
        if file.type_name != "csv":
            raise AgentInputError(f"{file.filename}: engagement_analytics reads only CSV files.")
        exports.append((await ctx.read_file(file)).decode("utf-8-sig", errors="replace"))
    if not exports:
        raise AgentInputError("engagement_analytics needs a CSV export of post metrics.")
    posts: list[linkedin.Post] = []
    skipped = 0
    for export in exports:
        found, missed = await asyncio.to_thread(linkedin.read_posts, export)
        posts += found
        skipped += missed
    posts.sort(key=lambda p: p.when)
    return {
        "action": input.action,
        "target_audience": input.target_audience,
        **await asyncio.to_thread(linkedin.analyse, posts, skipped),
        "generated_by": "offline",
    }


async def _material(ctx: AgentContext, input: JordanInput) -> str:
    parts = [input.content or ""]
    if input.url:
        page = await ctx.fetch(input.url)
        if page.status_code >= 400:
            raise AgentInputError(f"The page at {input.url} answered HTTP {page.status_code}.")
        document = await asyncio.to_thread(parse_html, page.text, page.url)
        parts.append(document.text)
    for file in ctx.files:
        if file.type_name not in {"txt", "md"}:
            raise AgentInputError(f"{file.filename}: Jordan reads only txt and md files for {input.action}.")
        data = await ctx.read_file(file)
        parts.append((await ctx.parse(partial(parse_file, file.type_name, data), subject=file.filename)).text)
    return parse_plain("\n\n".join(p for p in parts if p.strip())).text if any(p.strip() for p in parts) else ""


def _analyse(input: JordanInput, material: str, hashtag_count: int) -> tuple[list[str], list[str]]:
    """The material's key sentences and the hashtags (CPU-bound on long material: run in a thread)."""
    points = Scorer(material).best(sentences(material), 12) if material else []
    return points, _hashtags(input, material, hashtag_count)


def _terms(phrase: str) -> list[str]:
    return [w for w in words(phrase) if not is_stop_word(w)]


def _hashtags(input: JordanInput, material: str, limit: int) -> list[str]:
    """Topic words first, then audience words not already covered, then the material's key terms."""
    candidates = _terms(input.content_topic or "")
    topic_stems = {w.lower()[:5] for w in candidates}
    candidates += [w for w in _terms(input.target_audience) if w.lower()[:5] not in topic_stems]
    candidates += [t.text for t in key_terms(material, 4)] if material else []
    tags: list[str] = []
    for term in candidates:
        tag = hashtag(term)
        if len(tag) > 1 and tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    return tags[: max(limit + 2, limit)]


def _rotate(tags: list[str], index: int, limit: int) -> list[str]:
    """The leading tags for every post, the last slot rotating through the rest so posts differ."""
    if limit == 0 or not tags:
        return []
    if len(tags) <= limit:
        return list(tags)
    head, rest = tags[: limit - 1], tags[limit - 1 :]
    return [*head, rest[index % len(rest)]]


FORMATS = ("list", "question", "how_to", "lesson", "contrarian")


def _audience(text: str) -> str:
    return text[:1].upper() + text[1:]


def _write(form: str, input: JordanInput, points: list[str], index: int) -> str:
    """One post in `form` about the topic for the audience, built on the material's points when there are any."""
    topic, audience, voice = input.content_topic or "", input.target_audience, VOICES[input.tone]
    fallback = [
        f"Start with one task your team repeats every week and apply {topic} there first.",
        f"Measure before and after: {audience} trust numbers, not promises.",
        f"Share what did not work with {topic}, not only the wins; candour builds credibility.",
        f"Pair {topic} with human judgment: the advantage comes from the combination.",
        f"Teach it: explaining {topic} to a colleague is the fastest way to learn it.",
    ]
    fallback = fallback[index % len(fallback) :] + fallback[: index % len(fallback)]  # each post leads differently
    items = (points + fallback)[:5]
    if form == "list":
        body = "\n".join(f"{n}. {item}" for n, item in enumerate(items[:5], start=1))
        text = (
            f"{len(items[:5])} ways {topic} is changing the work of {audience}:\n\n{body}\n\n"
            "Which one are you seeing already?"
        )
    elif form == "question":
        text = (
            f"{_audience(audience)}: where has {topic} made a measurable difference for you so far?\n\n"
            f"My view: {items[0]}\n\nAnd a second thought: {items[1]}\n\n"
            f"What am I missing? I would like to hear how {audience} see it."
        )
    elif form == "how_to":
        steps = "\n".join(f"Step {n}: {item}" for n, item in enumerate(items[:3], start=1))
        text = (
            f"How {audience} can get started with {topic} this week:\n\n{steps}\n\n"
            f"Small, steady steps beat a big launch. {voice.call_to_action}"
        )
    elif form == "lesson":
        text = (
            f"{voice.hook.format(title=topic)}\n\n"
            f"The lesson that keeps coming back when I work with {audience}: {items[0]}\n\n"
            f"{voice.bullet} {items[1]}\n{voice.bullet} {items[2]}\n\n"
            f"Have you seen the same? {voice.call_to_action}"
        )
    else:
        text = (
            f"Unpopular opinion: {topic} will not replace {audience}. "
            f"It will replace the ones who ignore it.\n\n"
            f"Why I think so: {items[0]}\n\nWhat it means in practice: {items[1]}\n\n"
            "Agree or disagree? Tell me why in the comments."
        )
    return voiced(text, input.tone)


def engagement_score(form: str, content: str, tags: list[str], local: datetime, specifics: bool) -> float:
    """The engagement model of the module docstring: a weighted mean of six features in 0..1."""
    length = len(content)
    features = {
        "format": _FORMAT_WEIGHTS.get(form, 0.7),
        "length": 1.0 if 900 <= length <= 2000 else 0.8 if 500 <= length < 900 else 0.6,
        "hashtags": 1.0 if 3 <= len(tags) <= 5 else 0.7 if tags else 0.5,
        "question": 1.0 if "?" in content.strip().split("\n")[-1] or content.rstrip().endswith("?") else 0.6,
        "timing": slot_weight(local),
        "specifics": 1.0 if specifics else 0.8,
    }
    return sum(_FEATURE_WEIGHTS[k] * v for k, v in features.items())


def band(score: float) -> str:
    return "high" if score >= 0.85 else "medium" if score >= 0.7 else "low"


async def _llm_posts(ctx: AgentContext, input: JordanInput, material: str, count: int) -> list[str] | None:
    if ctx.llm is None:
        return None
    answer = await llm.draft_json(
        ctx,
        f"You are Jordan, a LinkedIn ghostwriter. Write in a {input.tone.value.replace('_', ' ')} tone.",
        f'Write {count} distinct LinkedIn posts as {{"posts": ["..."]}} about "{input.content_topic}" for '
        f"{input.target_audience}. Each 600 to 1,800 characters, no hashtags, ending with a question."
        + (f"\n\nSource material:\n{material[:8000]}" if material else ""),
    )
    posts = answer.get("posts") if isinstance(answer, dict) else None
    if not isinstance(posts, list) or len(posts) < count:
        return None
    if not all(isinstance(p, str) and 0 < len(p.strip()) <= 3000 for p in posts[:count]):
        return None
    return [p.strip() for p in posts[:count]]
