"""The product agents: maya, jordan, sam, taylor."""

from __future__ import annotations

from backplane.agents.base import Agent
from backplane.agents.jordan import Jordan
from backplane.agents.maya import Maya
from backplane.agents.sam import Sam
from backplane.agents.taylor import Taylor


def product_agents() -> list[Agent]:
    return [Maya(), Jordan(), Sam(), Taylor()]
