"""One example `POST /v1/jobs` request per agent use case: the OpenAPI document shows them on the create-job
operation and the README's agent catalog lists the same (a test checks each passes the agent's own checks)."""

from __future__ import annotations

from typing import Any

_SAM = {"business_name": "Joe's Coffee Shop", "location": "Seattle, WA"}

# name -> (summary, request body)
USE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "maya_repurpose": (
        "maya: text into a Twitter thread and a LinkedIn post",
        {
            "agent_id": "maya",
            "input_data": {
                "source_type": "text",
                "content": "Your content here...",
                "target_formats": ["twitter_thread", "linkedin_post"],
            },
        },
    ),
    "maya_podcast_newsletter": (
        "maya: a podcast episode (an uploaded mp3, transcribed offline with timings) into a newsletter",
        {
            "agent_id": "maya",
            "input_data": {"source_type": "file", "target_formats": ["newsletter"]},
            "file_ids": ["file_8b2e4c6d0a1f3e57"],
        },
    ),
    "maya_video_linkedin_article": (
        "maya: a video (an uploaded mp4, its sound transcribed) into a LinkedIn article",
        {
            "agent_id": "maya",
            "input_data": {"source_type": "file", "target_formats": ["linkedin_article"], "tone": "professional"},
            "file_ids": ["file_5d7a9c1e3b2f4a68"],
        },
    ),
    "maya_content_calendar": (
        "maya: a content calendar, dated LinkedIn and Twitter/X posts on weekdays, from a blog post",
        {
            "agent_id": "maya",
            "input_data": {
                "source_type": "url",
                "url": "https://example.com/blog-post",
                "target_formats": ["content_calendar"],
            },
            "config": {"calendar_posts": 10, "calendar_start": "2026-12-01"},
        },
    ),
    "jordan_content_creation": (
        "jordan: LinkedIn posts with posting times and predicted engagement",
        {
            "agent_id": "jordan",
            "input_data": {
                "action": "content_creation",
                "content_topic": "AI in marketing",
                "target_audience": "B2B marketers",
                "tone": "thought_leadership",
                "timezone": "America/New_York",
            },
        },
    ),
    "jordan_content_calendar": (
        "jordan: a calendar of posts on Tue-Thu mornings",
        {
            "agent_id": "jordan",
            "input_data": {"action": "content_calendar", "content_topic": "remote teams", "post_count": 5},
        },
    ),
    "jordan_profile_optimization": (
        "jordan: headline, about and experience suggestions for a pasted profile (or `url`)",
        {
            "agent_id": "jordan",
            "input_data": {
                "action": "profile_optimization",
                "target_audience": "logistics teams",
                "content": "Priya Raman\nData engineer at Fernwood Logistics\n\nAbout\nI build data pipelines "
                "for warehouse routing.\n\nExperience\nCut warehouse routing costs by 18% with a new pipeline",
            },
        },
    ),
    "jordan_engagement_analytics": (
        "jordan: best times, formats, topics and trend from a CSV export of post metrics (or a csv file)",
        {
            "agent_id": "jordan",
            "input_data": {
                "action": "engagement_analytics",
                "content": "Date,Post type,Post title,Impressions,Reactions,Comments,Shares\n"
                "2026-09-01 17:00,text,Hiring junior analysts,1000,10,1,0\n"
                "2026-09-02 09:00,carousel,Kubernetes cost tricks,1000,60,12,8\n",
            },
        },
    ),
    "jordan_dm_campaign": (
        "jordan: a LinkedIn message sequence with personalisation fields",
        {
            "agent_id": "jordan",
            "input_data": {
                "action": "dm_campaign",
                "content_topic": "cold-chain monitoring",
                "target_audience": "pharmacy distributors",
                "personalization_fields": ["first_name", "company"],
                "campaign_goal": "a pilot at one depot",
            },
        },
    ),
    "sam_audit": (
        "sam: a local-SEO audit of the business's site",
        {
            "agent_id": "sam",
            "input_data": {
                "action": "audit",
                **_SAM,
                "website": "https://joescoffee.com",
                "primary_keywords": ["coffee shop", "espresso", "cafe"],
                "service_area": "Capitol Hill, Downtown Seattle",
            },
        },
    ),
    "sam_competitor_analysis": (
        "sam: the business's site against competitors' sites",
        {
            "agent_id": "sam",
            "input_data": {
                "action": "competitor_analysis",
                **_SAM,
                "website": "https://joescoffee.com",
                "competitors": ["https://beanandleaf.example", "https://cornercafe.example"],
                "primary_keywords": ["coffee shop", "espresso"],
            },
        },
    ),
    "sam_review_responses": (
        "sam: replies to reviews, by rating and sentiment",
        {
            "agent_id": "sam",
            "input_data": {
                "action": "review_responses",
                **_SAM,
                "phone": "(206) 555-0142",
                "reviews": [
                    {"author": "Dana K.", "rating": 5, "text": "The cardamom latte is wonderful."},
                    {"author": "Lee", "rating": 2, "text": "Burnt croissants and a long queue."},
                ],
            },
        },
    ),
    "taylor_invoice": (
        "taylor: an invoice's fields (number, date, vendor, line items, total) from an uploaded PDF or image",
        {"agent_id": "taylor", "input_data": {"extraction_type": "invoice"}, "file_ids": ["file_3f9c2a7b1d4e5f60"]},
    ),
    "taylor_ocr": (
        "taylor: the text of every page of PDFs and images (a multi-page TIFF, a BMP scan), OCR in the given language",
        {
            "agent_id": "taylor",
            "input_data": {"extraction_type": "ocr", "language": "eng"},
            "file_ids": ["file_5b21c0e9a7d34f18"],
        },
    ),
    "taylor_form_data": (
        'taylor: a form\'s "Label: value" fields (and the invoice fields when it is an invoice)',
        {"agent_id": "taylor", "input_data": {"extraction_type": "form_data"}, "file_ids": ["file_3f9c2a7b1d4e5f60"]},
    ),
    "taylor_classification": (
        "taylor: the document type (invoice, receipt, contract, resume, letter, form)",
        {
            "agent_id": "taylor",
            "input_data": {"extraction_type": "classification"},
            "file_ids": ["file_3f9c2a7b1d4e5f60"],
        },
    ),
    "taylor_tables": (
        "taylor: the tables of a text PDF (page, header, rows); GET /v1/jobs/{id}/output?format=csv gives them as CSV",
        {"agent_id": "taylor", "input_data": {"extraction_type": "tables"}, "file_ids": ["file_8e40d2f6c1b97a35"]},
    ),
}


def openapi_examples() -> dict[str, dict[str, Any]]:
    return {name: {"summary": summary, "value": body} for name, (summary, body) in USE_CASES.items()}
