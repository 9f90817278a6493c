"""Running an agent the way the job runner does: input and config validated by the agent's models first."""

from __future__ import annotations

from typing import Any

from backplane.agents.base import Agent, AgentContext


async def run_agent(
    agent: Agent, ctx: AgentContext, input_data: dict[str, Any], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    input_model = agent.input_model.model_validate(input_data)
    config_model = agent.config_model.model_validate(config or {})
    return await agent.run(ctx, input_model, config_model)
