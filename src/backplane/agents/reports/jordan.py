"""Jordan's analytics report (HTML): the schedule, predicted engagement by post, format and day, and the posts."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from lxml.html import builder as E

from backplane.agents.reports import html
from backplane.agents.reports.text import as_dict, as_list, clean

_BANDS = ("high", "medium", "low")


def _weekday(moment: Any) -> str:
    try:
        return datetime.fromisoformat(str(moment)).strftime("%A")
    except ValueError:
        return ""


def _score(post: dict[str, Any]) -> float:
    score = post.get("engagement_score")
    return float(score) if isinstance(score, int | float) else 0.0


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else ""


def report(output: dict[str, Any]) -> bytes:
    posts = [as_dict(p) for p in as_list(output.get("suggested_posts"))]
    scores = [float(p["engagement_score"]) for p in posts if isinstance(p.get("engagement_score"), int | float)]
    best = max(posts, key=_score, default=None)
    topic = clean(output.get("content_topic"))
    bands = {band: sum(1 for p in posts if p.get("predicted_engagement") == band) for band in _BANDS}
    overview = [
        ("Topic", topic),
        ("Audience", output.get("target_audience")),
        ("Time zone", output.get("timezone")),
        ("Action", output.get("action")),
        ("Posts", len(posts)),
        ("Mean engagement score", _mean(scores)),
        *((f"Predicted {band} engagement", bands[band]) for band in _BANDS),
        ("Best slot", best.get("local_posting_time") if best else ""),
        ("Written by", output.get("generated_by")),
    ]
    by_format: dict[str, list[float]] = defaultdict(list)
    by_day: dict[str, list[float]] = defaultdict(list)
    for post in posts:
        score = post.get("engagement_score")
        if isinstance(score, int | float):
            by_format[clean(post.get("format"))].append(float(score))
            by_day[_weekday(post.get("local_posting_time"))].append(float(score))
    schedule = [
        (
            number,
            p.get("optimal_posting_time"),
            p.get("local_posting_time"),
            p.get("format"),
            E.SPAN(clean(p.get("predicted_engagement")), **{"class": clean(p.get("predicted_engagement"))}),
            p.get("engagement_score"),
            p.get("char_count"),
            " ".join(clean(t) for t in as_list(p.get("hashtags"))),
        )
        for number, p in enumerate(posts, start=1)
    ]
    articles = [
        E.ARTICLE(
            E.H3(f"Post {number}: {clean(p.get('format'))}, {clean(p.get('local_posting_time'))}"),
            E.P(clean(p.get("content")), **{"class": "post"}),
            E.P(" ".join(clean(t) for t in as_list(p.get("hashtags"))), **{"class": "meta"}),
            id=f"post-{number}",
        )
        for number, p in enumerate(posts, start=1)
    ]
    title = f"LinkedIn analytics report: {topic}"
    return html.document(
        title,
        E.H1(title),
        E.P(
            f"For {clean(output.get('target_audience'))}, times in {clean(output.get('timezone'))}.",
            **{"class": "meta"},
        ),
        html.section("overview", "Overview", html.definitions("summary", overview)),
        html.section(
            "schedule-section",
            "Schedule and predicted engagement",
            html.table(
                "schedule",
                ["#", "Posting time (UTC)", "Local time", "Format", "Engagement", "Score", "Characters", "Hashtags"],
                schedule,
            ),
        ),
        html.section(
            "formats-section",
            "Engagement by format",
            html.table(
                "formats",
                ["Format", "Posts", "Mean score"],
                [(name, len(values), _mean(values)) for name, values in sorted(by_format.items())],
            ),
        ),
        html.section(
            "days-section",
            "Engagement by day",
            html.table("days", ["Day", "Posts", "Mean score"], [(day, len(v), _mean(v)) for day, v in by_day.items()]),
        ),
        html.section("posts", "Posts", *articles),
    )
