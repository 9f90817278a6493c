"""The four product agents behind the one interface, with the guide's file types and sizes."""

from __future__ import annotations

from backplane.agents import registry
from backplane.agents.catalog import product_agents
from backplane.files.types import AGENT_FILES


def test_product_agents_describe_themselves() -> None:
    agents = {agent.id: agent for agent in product_agents()}
    assert sorted(agents) == ["jordan", "maya", "sam", "taylor"]
    for agent_id, agent in agents.items():
        described = agent.describe()
        types, size = AGENT_FILES[agent_id]
        assert described["accepted_file_types"] == sorted(types)
        assert described["max_file_bytes"] == size
        assert described["time_limit_seconds"] == 600.0
        assert described["input_schema"]["type"] == "object"
        assert described["config_schema"]["type"] == "object"
        assert described["name"] and described["description"]
    maya = agents["maya"].describe()["input_schema"]["properties"]
    assert maya["max_length"]["default"] == 280
    assert maya["target_formats"]["examples"] == [["twitter_thread", "linkedin_post", "newsletter"]]
    sam = agents["sam"].describe()["input_schema"]
    # website is required by the audit and competitor_analysis, not by review_responses: checked at creation.
    assert sam["required"] == ["business_name", "location"]
    assert sam["properties"]["action"]["enum"] == ["audit", "competitor_analysis", "review_responses"]
    jordan = agents["jordan"].describe()["input_schema"]["properties"]
    assert jordan["action"]["enum"] == [
        "content_creation",
        "content_calendar",
        "profile_optimization",
        "engagement_analytics",
        "dm_campaign",
    ]


def test_registry_loads_them() -> None:
    registry.load()
    assert [a.id for a in registry.all_agents()][:4] == ["jordan", "maya", "sam", "taylor"]
    assert registry.get_agent("taylor") is not None
