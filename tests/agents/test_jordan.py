"""Jordan: posts built from the topic, audience and material, on the posting-time and engagement models."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from backplane.agents.base import AgentInputError
from backplane.agents.jordan import (
    Jordan,
    JordanConfig,
    JordanInput,
    band,
    engagement_score,
    posting_slots,
    slot_weight,
)
from backplane.agents.text import sentences
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent

GUIDE_REQUEST = {
    "action": "content_creation",
    "content_topic": "AI in marketing",
    "target_audience": "B2B marketers",
    "tone": "thought_leadership",
}
# A Monday morning in New York (13:30 UTC = 08:30 EST).
MONDAY = datetime(2026, 11, 23, 13, 30, tzinfo=UTC)


def at(moment: datetime):  # type: ignore[no-untyped-def]
    return lambda: moment


async def test_guide_request_gives_scheduled_scored_posts(make_ctx: MakeContext) -> None:
    output = await run_agent(Jordan(), make_ctx(now=at(MONDAY)), GUIDE_REQUEST | {"timezone": "America/New_York"})

    posts = output["suggested_posts"]
    assert len(posts) == 3
    assert output["generated_by"] == "offline"
    # Tue, Wed, Thu 09:00 in New York (UTC-5 in November).
    assert [p["optimal_posting_time"] for p in posts] == [
        "2026-11-24T14:00:00Z",
        "2026-11-25T14:00:00Z",
        "2026-11-26T14:00:00Z",
    ]
    assert [p["local_posting_time"] for p in posts] == [
        "2026-11-24T09:00:00-05:00",
        "2026-11-25T09:00:00-05:00",
        "2026-11-26T09:00:00-05:00",
    ]
    for post in posts:
        assert post["hashtags"] == ["#AI", "#Marketing", "#B2B"]
        assert "AI in marketing" in post["content"] and "B2B marketers" in post["content"]
        assert post["predicted_engagement"] == band(post["engagement_score"])
        assert post["predicted_engagement"] in {"high", "medium", "low"}
        assert post["char_count"] == len(post["content"])
    assert [p["format"] for p in posts] == ["list", "question", "how_to"]
    assert len({p["content"] for p in posts}) == 3
    assert posts[0]["content"].startswith("5 ways AI in marketing is changing the work of B2B marketers:")


async def test_times_are_in_the_future_on_the_models_days_and_hours(make_ctx: MakeContext) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    for now in (MONDAY, datetime(2026, 11, 26, 23, 59, tzinfo=UTC), datetime(2027, 3, 9, 0, 30, tzinfo=UTC)):
        output = await run_agent(
            Jordan(),
            make_ctx(now=at(now)),
            {"action": "content_calendar", "content_topic": "remote teams", "timezone": "Asia/Tokyo"},
        )
        posts = output["suggested_posts"]
        assert len(posts) == 5  # a calendar's default
        times = [datetime.fromisoformat(p["optimal_posting_time"].replace("Z", "+00:00")) for p in posts]
        assert times == sorted(times) and len({t.date() for t in times}) == 5
        for moment in times:
            local = moment.astimezone(zone)
            assert moment > now
            assert local.weekday() in {1, 2, 3} and local.hour in {8, 9} and local.minute == 0


def test_first_slot_moves_to_eight_when_nine_is_too_close() -> None:
    zone = ZoneInfo("Europe/Paris")
    tuesday_0730_paris = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)  # 07:30 in Paris: 09:00 is 90 min away
    assert posting_slots(tuesday_0730_paris, zone, 1)[0] == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    tuesday_0815_paris = datetime(2026, 11, 24, 7, 15, tzinfo=UTC)  # 09:00 is 45 min away: too close
    assert posting_slots(tuesday_0815_paris, zone, 1)[0] == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert slot_weight(datetime(2026, 11, 24, 9, tzinfo=zone)) == 1.0
    assert slot_weight(datetime(2026, 11, 29, 22, tzinfo=zone)) == 0.15  # Sunday night


def test_engagement_model() -> None:
    tuesday_nine = datetime(2026, 11, 24, 9, tzinfo=UTC)
    strong = "x" * 1000 + "\n\nWhat do you think?"
    assert engagement_score("list", strong, ["#A", "#B", "#C"], tuesday_nine, True) == pytest.approx(0.975)
    assert band(0.975) == "high"
    weak = "Short statement."
    sunday_night = datetime(2026, 11, 29, 22, tzinfo=UTC)
    score = engagement_score("contrarian", weak, [], sunday_night, False)
    assert score == pytest.approx(0.25 * 0.8 + 0.2 * 0.6 + 0.15 * 0.5 + 0.15 * 0.6 + 0.15 * 0.15 + 0.1 * 0.8)
    assert band(score) == "low"
    assert band(0.75) == "medium"


async def test_material_from_a_file_becomes_the_points(make_ctx: MakeContext) -> None:
    notes = "\n\n".join(samples.BLOG_PARAGRAPHS).encode()
    ctx = make_ctx({"notes.md": notes}, now=at(MONDAY))

    output = await run_agent(
        Jordan(), ctx, {"content_topic": "urban composting", "target_audience": "community gardeners", "tone": "casual"}
    )

    source = sentences(" ".join(samples.BLOG_PARAGRAPHS))
    for post in output["suggested_posts"]:
        assert any(s.replace("do not", "don't") in post["content"] for s in source), post["content"]
        # topic words, then the audience's, then the material's key terms (one rotating slot)
        assert post["hashtags"][:2] == ["#Urban", "#Composting"]
        assert len(post["hashtags"]) == 3
    assert {p["hashtags"][2] for p in output["suggested_posts"]} >= {"#Community", "#Gardeners"}


async def test_input_validation() -> None:
    with pytest.raises(ValidationError, match="action"):
        JordanInput.model_validate({"action": "send_messages", "content_topic": "AI"})
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        JordanInput.model_validate({"content_topic": "AI", "timezone": "Mars/Base"})
    # content_topic is required by the actions that write about it: refused at creation (check_input).
    without_topic = JordanInput.model_validate({"target_audience": "founders"})
    assert Jordan().check_input(without_topic, JordanConfig(), []) == {
        "input_data.content_topic": ["content_topic is required for content_creation."]
    }
    parsed = JordanInput.model_validate({"contentTopic": "AI", "targetAudience": "founders", "postCount": 2})
    assert (parsed.content_topic, parsed.target_audience, parsed.post_count) == ("AI", "founders", 2)


async def test_wrong_file_type_is_refused(make_ctx: MakeContext) -> None:
    with pytest.raises(AgentInputError, match="Jordan reads only txt and md files"):
        await run_agent(Jordan(), make_ctx({"a.pdf": samples.text_pdf(["Hello there."])}), {"content_topic": "AI"})
