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
    """The report for the job's action: posts (content_creation, content_calendar), a profile review, an
    engagement analysis or a message sequence."""
    action = output.get("action")
    if action == "profile_optimization":
        return _profile(output)
    if action == "engagement_analytics":
        return _analytics(output)
    if action == "dm_campaign":
        return _dm(output)
    return _posts(output)


def _rate(value: Any) -> str:
    return f"{float(value):.2%}" if isinstance(value, int | float) else ""


def _ranking(table_id: str, key: str, label: str, rows: list[Any]) -> Any:
    items = [as_dict(r) for r in rows]
    return html.table(
        table_id,
        [label, "Posts", "Mean engagement rate"],
        [(r.get(key), r.get("posts"), _rate(r.get("mean_engagement_rate"))) for r in items],
    )


def _analytics(output: dict[str, Any]) -> bytes:
    trend = as_dict(output.get("trend"))
    period = as_dict(output.get("period"))
    title = "LinkedIn engagement analytics"
    overview = [
        ("Posts analysed", output.get("posts_analysed")),
        ("Rows skipped", output.get("rows_skipped")),
        ("Period", f"{clean(period.get('start'))} to {clean(period.get('end'))}"),
        ("Mean engagement rate", _rate(output.get("mean_engagement_rate"))),
        ("Total impressions", output.get("total_impressions")),
        ("Trend", trend.get("direction")),
        ("Change per week", _rate(trend.get("change_per_week"))),
    ]
    top = [as_dict(p) for p in as_list(output.get("top_posts"))]
    return html.document(
        title,
        E.H1(title),
        html.section("overview", "Overview", html.definitions("summary", overview)),
        html.section("insights-section", "Insights", E.UL(*(E.LI(clean(i)) for i in as_list(output.get("insights"))))),
        html.section("days-section", "Best days", _ranking("days", "day", "Day", as_list(output.get("best_days")))),
        html.section(
            "hours-section", "Best hours", _ranking("hours", "hour", "Hour", as_list(output.get("best_hours")))
        ),
        html.section(
            "formats-section", "Formats", _ranking("formats", "format", "Format", as_list(output.get("formats")))
        ),
        html.section("topics-section", "Topics", _ranking("topics", "topic", "Topic", as_list(output.get("topics")))),
        html.section(
            "top-section",
            "Top posts",
            html.table(
                "top-posts",
                ["Date", "Engagement rate", "Format", "Text"],
                [(p.get("date"), _rate(p.get("engagement_rate")), p.get("format"), p.get("text")) for p in top],
            ),
        ),
    )


def _profile(output: dict[str, Any]) -> bytes:
    profile = as_dict(output.get("profile"))
    headline = as_dict(output.get("headline"))
    about = as_dict(output.get("about"))
    title = f"LinkedIn profile review: {clean(profile.get('name')) or clean(output.get('source'))}"
    experience = [as_dict(e) for e in as_list(output.get("experience"))]
    return html.document(
        title,
        E.H1(title),
        E.P(f"For {clean(output.get('target_audience'))}.", **{"class": "meta"}),
        html.section(
            "headline-section",
            "Headline",
            html.definitions(
                "headline",
                [("Current", headline.get("current")), ("Suggested", headline.get("suggested"))],
            ),
            E.UL(*(E.LI(clean(i)) for i in as_list(headline.get("issues")))),
        ),
        html.section(
            "about-section",
            "About",
            E.P(clean(about.get("suggested")), **{"class": "post", "id": "about-suggested"}),
            E.UL(*(E.LI(clean(i)) for i in as_list(about.get("issues")))),
        ),
        html.section(
            "experience-section",
            "Experience",
            html.table(
                "experience",
                ["Entry", "Suggestions"],
                [(e.get("original"), " ".join(clean(t) for t in as_list(e.get("suggestions")))) for e in experience],
            ),
        ),
        html.section(
            "keywords-section",
            "Keywords",
            html.definitions(
                "keywords",
                [
                    (k.replace("_", " ").capitalize(), ", ".join(clean(t) for t in as_list(v)))
                    for k, v in as_dict(output.get("keywords")).items()
                ],
            ),
        ),
    )


def _dm(output: dict[str, Any]) -> bytes:
    title = f"LinkedIn message campaign: {clean(output.get('content_topic'))}"
    messages = [as_dict(m) for m in as_list(output.get("messages"))]
    fields = ", ".join(clean(f) for f in as_list(output.get("personalization_fields")))
    return html.document(
        title,
        E.H1(title),
        E.P(f"For {clean(output.get('target_audience'))}; fields: {fields}.", **{"class": "meta"}),
        html.section(
            "messages-section",
            "Messages",
            html.table(
                "messages",
                ["Step", "Type", "Send after (days)", "Template", "Characters"],
                [
                    (m.get("step"), m.get("type"), m.get("send_after_days"), m.get("template"), m.get("char_count"))
                    for m in messages
                ],
            ),
        ),
        html.section(
            "guidelines-section", "Guidelines", E.UL(*(E.LI(clean(g)) for g in as_list(output.get("guidelines"))))
        ),
    )


def _posts(output: dict[str, Any]) -> bytes:
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
