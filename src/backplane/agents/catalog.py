"""The product agents: maya, jordan, sam, taylor."""

from __future__ import annotations

from backplane.agents.base import Agent


def product_agents() -> list[Agent]:
    return []
