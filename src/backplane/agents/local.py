"""Sam's competitor_analysis and review_responses, offline.

- Competitor analysis: the business's site and each competitor's, read as the audit reads a site
  (`site.read_site`) and scored by the same checks, side by side: scores, titles, descriptions, words,
  structured data, keywords; the gaps are the checks a competitor passes and the business fails, and the
  topics (key terms) competitors write about that the business's page never mentions.
- Review responses: each review's sentiment from its rating (4-5 positive, 3 mixed, 1-2 negative), corrected
  by its words when the rating is missing; the reply names the reviewer and what the review talks about (its
  key terms), thanks, apologises or invites contact as the sentiment calls for, and is signed by the business.
"""

from __future__ import annotations

import re
from typing import Any

from backplane.agents.site import Site
from backplane.agents.text import key_terms, truncate, word_count

# Word lists read better as text.
_POSITIVE = frozenset(
    [
        "great",
        "excellent",
        "amazing",
        "love",
        "loved",
        "friendly",
        "delicious",
        "best",
        "wonderful",
        "perfect",
        "fantastic",
        "helpful",
        "recommend",
        "fresh",
        "clean",
        "quick",
        "fast",
        "tasty",
        "awesome",
    ]
)
_NEGATIVE = frozenset(
    [
        "bad",
        "terrible",
        "awful",
        "rude",
        "slow",
        "cold",
        "dirty",
        "worst",
        "never",
        "disappointing",
        "disappointed",
        "overpriced",
        "wrong",
        "broken",
        "horrible",
        "noisy",
        "late",
        "stale",
        "burnt",
    ]
)


def site_summary(site: Site, checks: list[Any], keywords: list[str]) -> dict[str, Any]:
    body = site.body_text.lower()
    return {
        "url": site.url,
        "title": site.title,
        "meta_description": site.meta_description,
        "h1": site.h1,
        "word_count": word_count(site.body_text),
        "seo_score": round(sum(c.earned for c in checks if c.score == "seo")),
        "gmb_score": round(sum(c.earned for c in checks if c.score == "gmb")),
        "local_business_schema": site.local_business is not None,
        "https": site.url.startswith("https://"),
        "keywords_in_text": [k for k in keywords if k.lower() in body],
        "passed_checks": [c.id for c in checks if c.passed],
    }


def gaps(own: tuple[Site, list[Any]], rivals: list[tuple[Site, list[Any]]]) -> list[dict[str, Any]]:
    """Checks some competitor passes and the business fails, the most competitors first."""
    _, own_checks = own
    failed = {c.id: c for c in own_checks if not c.passed}
    found: list[dict[str, Any]] = []
    for check_id, check in failed.items():
        ahead = [
            site.title or site.url for site, checks in rivals if any(c.id == check_id and c.passed for c in checks)
        ]
        if ahead:
            found.append(
                {
                    "check": check_id,
                    "category": check.category,
                    "priority": check.priority,
                    "competitors_ahead": ahead,
                    "action": check.action,
                }
            )
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(found, key=lambda g: (order.get(g["priority"], 3), -len(g["competitors_ahead"]), g["check"]))


def topic_gaps(own: Site, rivals: list[Site], limit: int = 10) -> list[dict[str, Any]]:
    """Key terms of competitors' pages that the business's page never mentions."""
    mine = own.body_text.lower()
    counts: dict[str, list[str]] = {}
    for site in rivals:
        for term in key_terms(site.body_text, 12):
            if term.text.lower() not in mine:
                counts.setdefault(term.text, []).append(site.title or site.url)
    ranked = sorted(counts.items(), key=lambda item: (-len(item[1]), item[0].lower()))[:limit]
    return [{"topic": topic, "competitors": names} for topic, names in ranked]


def sentiment(rating: int | None, text: str) -> str:
    if rating is not None:
        return "positive" if rating >= 4 else "mixed" if rating == 3 else "negative"
    lowered = set(re.findall(r"[a-z']+", text.lower()))
    balance = len(lowered & _POSITIVE) - len(lowered & _NEGATIVE)
    return "positive" if balance > 0 else "negative" if balance < 0 else "mixed"


def _mentions(text: str) -> list[str]:
    """What the review talks about: its key terms, less the words that only say how it felt."""
    feelings = _POSITIVE | _NEGATIVE
    terms = [t.text for t in key_terms(text, 8)] if text.strip() else []
    return [t for t in terms if not set(t.lower().split()) <= feelings][:3]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


TEMPLATES = {
    "positive": (
        "Thank you, {reviewer_name}! We are delighted you enjoyed {mentions}. "
        "Reviews like yours make our day at {business_name}, and we look forward to welcoming you back in {city}."
    ),
    "mixed": (
        "Thank you for the honest review, {reviewer_name}. We are glad parts of your visit went well, and we hear "
        "you about {mentions}: we have shared it with the team. We hope to give you a five-star visit next time "
        "at {business_name}."
    ),
    "negative": (
        "Hi {reviewer_name}, we are sorry that {mentions} fell short of what {business_name} should offer. "
        "This is not the experience we want for anyone. Please contact us{contact} so we can put it right."
    ),
}


def respond(reviews: list[Any], business: str, city: str, phone: str | None) -> dict[str, Any]:
    responses = []
    contact = f" at {phone}" if phone else " directly"
    for number, review in enumerate(reviews, start=1):
        feeling = sentiment(review.rating, review.text)
        mentions = _mentions(review.text)
        template = TEMPLATES[feeling]
        if not review.author and feeling != "negative":  # "Thank you!", not "Thank you, there!"
            template = template.replace(", {reviewer_name}", "")
        values = {
            "reviewer_name": review.author or "there",
            "business_name": business,
            "city": city,
            "mentions": _join(mentions) if mentions else "your visit",
            "contact": contact,
        }
        reply = template.format(**values)
        if feeling == "positive" and review.rating == 5:
            reply += " Five stars means a lot to a local business."
        responses.append(
            {
                "review_number": number,
                "author": review.author,
                "rating": review.rating,
                "sentiment": feeling,
                "mentions": mentions,
                "excerpt": truncate(review.text, 160),
                "response": reply,
                "respond_within_hours": 24 if feeling == "negative" else 72,
            }
        )
    counts = {s: sum(1 for r in responses if r["sentiment"] == s) for s in ("positive", "mixed", "negative")}
    ratings = [r.rating for r in reviews if r.rating is not None]
    return {
        "business_name": business,
        "summary": {
            "reviews": len(responses),
            **counts,
            "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
        },
        "responses": responses,
        "templates": {
            s: t.replace("{contact}", contact).replace("{business_name}", business).replace("{city}", city)
            for s, t in TEMPLATES.items()
        },
    }
