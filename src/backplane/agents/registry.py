"""Agents by id. The four product agents, plus test agents when AGENT_TEST_MODE is on (never in production)."""

from __future__ import annotations

from backplane.agents.base import Agent

_AGENTS: dict[str, Agent] = {}


def register(agent: Agent) -> Agent:
    _AGENTS[agent.id] = agent
    return agent


def get_agent(agent_id: str) -> Agent | None:
    return _AGENTS.get(agent_id)


def all_agents() -> list[Agent]:
    return sorted(_AGENTS.values(), key=lambda a: a.id)


def load(*, test_agents: bool = False) -> None:
    """Register the product agents (agents/catalog.py) and, for tests, the test agents."""
    from backplane.agents import catalog

    for agent in catalog.product_agents():
        register(agent)
    if test_agents:
        from backplane.agents import diagnostic

        for agent in diagnostic.test_agents():
            register(agent)
