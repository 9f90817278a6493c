"""Jordan's profile, analytics and direct-message use cases, offline: everything comes from the input.

- `profile`: a LinkedIn profile (pasted text, or a fetched page's sections) read into headline, about and
  experience, then judged against LinkedIn's limits (headline 220 characters, about 2,600) and common
  advice (a headline naming role, audience and value; an about with a hook, proof and a call to action;
  experience lines that start with a verb and carry a number), with rewritten suggestions built from the
  profile's own words and the target audience.
- `analytics`: a CSV export of post metrics (LinkedIn's columns or similar: date, impressions, reactions,
  comments, shares, engagement rate, post type, text) into the best weekdays and hours, formats and topics
  by mean engagement rate, and the trend (least-squares slope of the engagement rate over time).
- `dm_templates`: a short message sequence (connection request within LinkedIn's 300 characters, then
  follow-ups) with `{first_name}`-style personalisation fields the sender fills in.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

from backplane.agents.base import AgentInputError
from backplane.agents.documents import Document
from backplane.agents.text import is_stop_word, key_terms, normalize, sentences, truncate, words

HEADLINE_LIMIT = 220
ABOUT_LIMIT = 2600
CONNECTION_NOTE_LIMIT = 300
MAX_CSV_ROWS = 20_000

_SECTION_NAMES = {
    "headline": "headline",
    "about": "about",
    "summary": "about",
    "experience": "experience",
    "education": "education",
    "skills": "skills",
    "licenses & certifications": "other",
    "volunteering": "other",
    "activity": "other",
}
_ACTION_VERBS = frozenset(
    """led built launched grew increased reduced cut created designed delivered managed drove owned shipped
    founded scaled improved developed ran negotiated won saved hired trained wrote opened introduced""".split()  # noqa: SIM905 (a word list reads better as text)
)


@dataclass(slots=True)
class Profile:
    name: str | None = None
    headline: str = ""
    about: str = ""
    experience: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)


def profile_from_text(text: str) -> Profile:
    """Pasted profile text: the lines before the first section header are the name and the headline."""
    profile = Profile()
    section: str | None = None
    intro: list[str] = []
    about: list[str] = []
    for raw in text.splitlines():
        line = normalize(raw)
        if not line:
            continue
        name = _SECTION_NAMES.get(line.lower().rstrip(":"))
        if name is not None:
            section = name
            continue
        if section is None:
            intro.append(line)
        elif section == "headline":
            profile.headline = f"{profile.headline} {line}".strip()
        elif section == "about":
            about.append(line)
        elif section == "experience":
            profile.experience.append(line)
        elif section == "skills":
            profile.skills += [s.strip() for s in re.split(r"[,·•|]", line) if s.strip()]
    if not profile.headline:
        if len(intro) >= 2:
            profile.name, profile.headline = intro[0], intro[1]
        elif intro:
            profile.headline = intro[0]
    elif intro:
        profile.name = intro[0]
    profile.about = "\n".join(about)
    return profile


def profile_from_page(document: Document, name: str | None, headline: str | None) -> Profile:
    """A fetched profile page: its h1 is the name, its meta description (or title) the headline."""
    lines: list[str] = []
    for section in document.sections:
        if section.heading:
            lines.append(section.heading)
        lines += section.paragraphs
    profile = profile_from_text("\n".join(lines))
    if headline and not profile.headline:
        profile.headline = headline
    if name:
        profile.name = name
    return profile


def _terms(text: str, limit: int) -> list[str]:
    return [t.text for t in key_terms(text, limit)] if text.strip() else []


def optimize_profile(profile: Profile, audience: str, focus: str | None) -> dict[str, Any]:
    if not (profile.headline or profile.about or profile.experience):
        raise AgentInputError("The profile has no headline, about or experience to work from.")
    everything = "\n".join([profile.headline, profile.about, *profile.experience])
    terms = _terms(everything, 8)
    role = re.split(r"\s[|@·•-]\s|\s+at\s+", profile.headline)[0].strip() if profile.headline else ""
    focus_text = focus or (terms[0] if terms else "")
    # Headline: role | what for whom | proof words from the profile.
    value = f"Helping {audience} with {focus_text}" if focus_text else f"Helping {audience}"
    proof = [t for t in terms if t.lower() not in (role + " " + focus_text).lower()][:2]
    headline_suggestion = truncate(" | ".join(p for p in (role, value, " · ".join(proof)) if p), HEADLINE_LIMIT)
    headline_issues = []
    if not profile.headline:
        headline_issues.append("No headline found.")
    else:
        if len(profile.headline) < 60:
            headline_issues.append(
                f"At {len(profile.headline)} characters the headline uses little of its {HEADLINE_LIMIT}: "
                "name what you do, for whom and the result."
            )
        if audience.lower() not in profile.headline.lower():
            headline_issues.append(f"The headline does not say who you help ({audience}).")
    about_sentences = sentences(profile.about)
    numbers = [s for s in about_sentences if re.search(r"\d", s)]
    about_issues = []
    if not profile.about:
        about_issues.append("No about section found: write one (hook, proof, call to action).")
    elif len(profile.about) < 600:
        about_issues.append(f"The about section is {len(profile.about)} characters: up to {ABOUT_LIMIT} are shown.")
    if profile.about and not numbers:
        about_issues.append("Add a number (results, years, clients) to back your claims.")
    if profile.about and not re.search(r"\b(contact|message|reach out|connect|email|dm|book)\b", profile.about, re.I):
        about_issues.append("End with a call to action: how to reach you and why.")
    hook = about_sentences[0] if about_sentences else f"I help {audience} with {focus_text or role}."
    proof_lines = numbers[:2] or [e for e in profile.experience if re.search(r"\d", e)][:2]
    about_suggestion = "\n\n".join(
        p
        for p in (
            hook,
            f"What I work on: {', '.join(terms[:5])}." if terms else "",
            "Proof: " + " ".join(proof_lines) if proof_lines else "",
            f"If you are one of the {audience} working on {focus_text or 'this'}, send me a message: "
            "I am happy to compare notes.",
        )
        if p
    )
    experience = []
    for line in profile.experience:
        first = words(line)[:1]
        tips = []
        if not first or first[0].lower() not in _ACTION_VERBS:
            tips.append("Start with an action verb (led, built, grew...).")
        if not re.search(r"\d", line):
            tips.append("Quantify the result (a number, a percentage, a scale).")
        experience.append({"original": line, "suggestions": tips or ["Clear and specific: keep it."]})
    keywords_missing = [t for t in terms if t.lower() not in profile.headline.lower()][:5]
    return {
        "profile": {
            "name": profile.name,
            "headline": profile.headline,
            "about": profile.about,
            "experience": profile.experience,
            "skills": profile.skills,
        },
        "headline": {
            "current": profile.headline,
            "suggested": headline_suggestion,
            "issues": headline_issues,
        },
        "about": {
            "current_chars": len(profile.about),
            "suggested": truncate(about_suggestion, ABOUT_LIMIT),
            "issues": about_issues,
        },
        "experience": experience,
        "keywords": {"from_profile": terms, "missing_from_headline": keywords_missing},
        "completeness": {
            "headline": bool(profile.headline),
            "about": bool(profile.about),
            "experience": bool(profile.experience),
            "skills": bool(profile.skills),
        },
    }


# Column names as exports spell them (lowercased, spaces/underscores ignored) -> ours.
_COLUMNS = {
    "date": "date",
    "postdate": "date",
    "posted": "date",
    "postedat": "date",
    "createddate": "date",
    "publishdate": "date",
    "time": "date",
    "impressions": "impressions",
    "views": "impressions",
    "reactions": "reactions",
    "likes": "reactions",
    "comments": "comments",
    "shares": "shares",
    "reposts": "shares",
    "clicks": "clicks",
    "engagementrate": "engagement_rate",
    "engagement": "engagement_rate",
    "posttype": "format",
    "type": "format",
    "format": "format",
    "contenttype": "format",
    "posttitle": "text",
    "title": "text",
    "text": "text",
    "content": "text",
    "post": "text",
    "topic": "topic",
}


def _column(name: str) -> str | None:
    return _COLUMNS.get(re.sub(r"[\s_\-()%]+", "", name.lower()))


def csv_problem(head: str) -> str | None:
    """Why a metrics CSV (its first bytes) cannot be analysed, or None: empty, or no date/metric columns."""
    try:
        rows = list(csv.reader(io.StringIO(head)))
    except csv.Error as exc:
        return f"The file cannot be read as CSV: {exc}."
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return "The CSV is empty: export your post metrics with a header row and one row per post."
    columns = {_column(c) for c in rows[0]}
    if "date" not in columns:
        return "The CSV has no date column (date, post date or posted at)."
    if not columns & {"impressions", "reactions", "comments", "shares", "engagement_rate"}:
        return "The CSV has no metric column (impressions, reactions, comments, shares or engagement rate)."
    if len(rows) < 2:
        return "The CSV has a header but no posts."
    return None


def _number(value: str) -> float | None:
    value = value.strip().replace(",", "")
    percent = value.endswith("%")
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        return None
    return number / 100 if percent else number


def _date(value: str) -> datetime | None:
    value = value.strip()
    for parse in (
        datetime.fromisoformat,
        lambda v: datetime.strptime(v, "%m/%d/%Y %H:%M"),
        lambda v: datetime.strptime(v, "%m/%d/%Y"),
        lambda v: datetime.strptime(v, "%d/%m/%Y %H:%M"),
        lambda v: datetime.strptime(v, "%d/%m/%Y"),
    ):
        try:
            return parse(value)
        except ValueError:
            continue
    return None


@dataclass(slots=True)
class Post:
    when: datetime
    rate: float
    impressions: float | None
    interactions: float
    format: str | None
    text: str
    topic: str | None


def read_posts(text: str) -> tuple[list[Post], int]:
    """The CSV's posts (rows with a readable date and metrics) and how many rows were skipped."""
    if problem := csv_problem(text[:65536]):
        raise AgentInputError(problem)
    try:
        return _read_posts(text)
    except csv.Error as exc:  # a field over the csv module's limit, say: the file will not get better
        raise AgentInputError(f"The file cannot be read as CSV: {exc}.") from exc


def _read_posts(text: str) -> tuple[list[Post], int]:
    reader = csv.reader(io.StringIO(text))
    header = [_column(c) for c in next(reader)]
    posts: list[Post] = []
    skipped = 0
    for number, row in enumerate(reader):
        if number >= MAX_CSV_ROWS:
            raise AgentInputError(f"The CSV has more than {MAX_CSV_ROWS} posts.")
        if not any(c.strip() for c in row):
            continue
        cells: dict[str, str] = {}
        for name, cell in zip(header, row, strict=False):
            if name is not None and name not in cells:
                cells[name] = cell
        when = _date(cells.get("date", ""))
        values = {
            k: _number(cells[k]) for k in ("impressions", "reactions", "comments", "shares", "clicks") if k in cells
        }
        interactions = sum(v for k, v in values.items() if v is not None and k != "impressions")
        impressions = values.get("impressions")
        rate = _number(cells["engagement_rate"]) if "engagement_rate" in cells else None
        if rate is not None and rate > 1:
            rate /= 100  # "4.5" meaning 4.5 %
        if rate is None and impressions:
            rate = interactions / impressions
        if when is None or rate is None:
            skipped += 1
            continue
        posts.append(
            Post(
                when,
                rate,
                impressions,
                interactions,
                (cells.get("format") or "").strip().lower() or None,
                cells.get("text", "").strip(),
                (cells.get("topic") or "").strip() or None,
            )
        )
    if not posts:
        raise AgentInputError(
            "No row of the CSV has a readable date and engagement (rate, or impressions and reactions)."
        )
    posts.sort(key=lambda p: p.when)
    return posts, skipped


def _ranked(groups: dict[str, list[Post]], key: str) -> list[dict[str, Any]]:
    rows = [
        {key: name, "posts": len(items), "mean_engagement_rate": round(mean(p.rate for p in items), 4)}
        for name, items in groups.items()
    ]
    return sorted(rows, key=lambda r: (-r["mean_engagement_rate"], -r["posts"], str(r[key])))


def _topic_words(text: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in words(text) if not is_stop_word(w) and not w.isdigit()))


def analyse(posts: list[Post], skipped: int) -> dict[str, Any]:
    by_day: dict[str, list[Post]] = defaultdict(list)
    by_hour: dict[str, list[Post]] = defaultdict(list)
    by_format: dict[str, list[Post]] = defaultdict(list)
    by_topic: dict[str, list[Post]] = defaultdict(list)
    has_time = any(p.when.hour or p.when.minute for p in posts)
    for post in posts:
        by_day[post.when.strftime("%A")].append(post)
        if has_time:
            by_hour[f"{post.when.hour:02d}:00"].append(post)
        by_format[post.format or "unknown"].append(post)
        post_topics = [post.topic] if post.topic else _topic_words(post.text)
        for topic in post_topics:
            by_topic[topic.lower()].append(post)
    overall = mean(p.rate for p in posts)
    # Topics: a word in at least two posts (one post says little), best mean first.
    ranked_topics = _ranked(by_topic, "topic")
    topics = [t for t in ranked_topics if t["posts"] >= 2] or ranked_topics
    trend = _trend(posts)
    best_days = _ranked(by_day, "day")
    best_hours = _ranked(by_hour, "hour")
    formats = _ranked(by_format, "format")
    insights = [f"Best day: {best_days[0]['day']} ({best_days[0]['mean_engagement_rate']:.2%} mean engagement)."]
    if best_hours:
        insights.append(f"Best hour: {best_hours[0]['hour']}.")
    if len(formats) > 1:
        insights.append(f"Best format: {formats[0]['format']}; weakest: {formats[-1]['format']}.")
    if topics:
        insights.append(f"Best topic: {topics[0]['topic']}.")
    insights.append(f"Engagement is {trend['direction']} ({trend['change_per_week']:+.2%} per week).")
    top = sorted(posts, key=lambda p: -p.rate)[:5]
    return {
        "posts_analysed": len(posts),
        "rows_skipped": skipped,
        "period": {"start": posts[0].when.isoformat(), "end": posts[-1].when.isoformat()},
        "mean_engagement_rate": round(overall, 4),
        "total_impressions": round(sum(p.impressions or 0 for p in posts)),
        "best_days": best_days,
        "best_hours": best_hours,
        "formats": formats,
        "topics": topics[:10],
        "trend": trend,
        "top_posts": [
            {
                "date": p.when.isoformat(),
                "engagement_rate": round(p.rate, 4),
                "format": p.format,
                "text": truncate(p.text, 200),
            }
            for p in top
        ],
        "insights": insights,
    }


def _trend(posts: list[Post]) -> dict[str, Any]:
    """Least-squares slope of the engagement rate over time (per week), and its direction."""
    start = posts[0].when
    xs = [(p.when - start).total_seconds() / (7 * 86400) for p in posts]
    ys = [p.rate for p in posts]
    mx, my = mean(xs), mean(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    relative = slope / my if my else 0.0
    direction = "rising" if relative > 0.02 else "falling" if relative < -0.02 else "flat"
    half = len(posts) // 2 or 1
    return {
        "direction": direction,
        "change_per_week": round(slope, 4),
        "first_half_mean": round(mean(ys[:half]), 4),
        "second_half_mean": round(mean(ys[half:] or ys), 4),
    }


FIELD_PATTERN = re.compile(r"\{([a-z_]+)\}")
DEFAULT_FIELDS = ("first_name", "company", "role")


def dm_templates(topic: str, audience: str, goal: str | None, fields: list[str], sender: str | None) -> dict[str, Any]:
    """A four-step sequence; every message uses the personalisation fields given (or first_name, company, role)."""
    fields = fields or list(DEFAULT_FIELDS)
    first = "{" + fields[0] + "}"
    others = ["{" + f + "}" for f in fields[1:]]
    context = f" at {others[0]}" if others else ""
    extra = f" ({', '.join(others[1:])})" if len(others) > 1 else ""
    ask = goal or f"a 15-minute call about {topic}"
    signature = f"\n\n{sender}" if sender else ""
    messages = [
        (
            "connection_request",
            0,
            f"Hi {first}, I work with {audience} on {topic} and saw your work{context}. "
            "I would be glad to connect and share notes.",
        ),
        (
            "follow_up",
            3,
            f"Thanks for connecting, {first}. Many {audience} I talk to find {topic} harder than it should be. "
            f"How are you approaching it{context}{extra}?{signature}",
        ),
        (
            "value",
            7,
            f"{first}, one thing that has worked for {audience}: treat {topic} as a weekly habit, "
            f"not a project. If it helps{context}, I can share how others set it up.{signature}",
        ),
        (
            "ask",
            14,
            f"Hi {first}, would {ask} be useful? If the timing is wrong, no problem at all, "
            f"and thanks for reading.{signature}",
        ),
    ]
    out = []
    for step, (kind, day, text) in enumerate(messages, start=1):
        if kind == "connection_request":
            text = truncate(text, CONNECTION_NOTE_LIMIT)
        out.append(
            {
                "step": step,
                "type": kind,
                "send_after_days": day,
                "template": text,
                "fields": sorted(set(FIELD_PATTERN.findall(text))),
                "char_count": len(text),
            }
        )
    return {
        "personalization_fields": fields,
        "messages": out,
        "guidelines": [
            f"Fill every field: {', '.join('{' + f + '}' for f in fields)}; never send a message with a field left in.",
            f"Connection requests are limited to {CONNECTION_NOTE_LIMIT} characters.",
            "Stop the sequence as soon as the person replies.",
        ],
    }


def fill(template: str, values: dict[str, str]) -> str:
    """A template with its fields filled (an unknown field stays as written)."""
    return FIELD_PATTERN.sub(lambda m: values.get(m.group(1), m.group(0)), template)
