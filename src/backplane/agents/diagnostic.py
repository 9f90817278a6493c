"""Agents for tests and benchmarks only (AGENT_TEST_MODE): predictable, fast, and able to fail on purpose."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from pydantic import Field

from backplane.agents.base import Agent, AgentContext, AgentInputError, AgentModel


class _NoopInput(AgentModel):
    echo: Any = None


class _NoConfig(AgentModel):
    """The test agents take no options."""


class NoopAgent(Agent):
    id = "test-noop"
    name = "No-op"
    description = "Returns its input at once (benchmarks, lifecycle tests)."
    input_model = _NoopInput
    config_model = _NoConfig
    file_types = frozenset({"txt", "md", "pdf", "png"})
    max_file_bytes = 10 * 1024 * 1024

    async def run(self, ctx: AgentContext, input: _NoopInput, config: _NoConfig) -> dict[str, Any]:
        return {"echo": input.echo, "files": [f.id for f in ctx.files]}


class _SleepInput(AgentModel):
    seconds: float = Field(default=1.0, ge=0, le=3600)


class SleepAgent(Agent):
    id = "test-sleep"
    name = "Sleeper"
    description = "Sleeps for `seconds`, then returns; for cancellation, concurrency and crash tests."
    input_model = _SleepInput
    config_model = _NoConfig
    time_limit_seconds = 30.0

    async def run(self, ctx: AgentContext, input: _SleepInput, config: _NoConfig) -> dict[str, Any]:
        steps = 4
        for step in range(steps):
            await ctx.progress(step / steps, f"step {step + 1} of {steps}")
            await asyncio.sleep(input.seconds / steps)
        return {"slept": input.seconds}


class _FailInput(AgentModel):
    message: str = "deliberate failure"
    fail_times: int = Field(default=1000, ge=0)  # fail the first N attempts, then succeed
    permanent: bool = False  # raise AgentInputError (never retried)


class FailingAgent(Agent):
    id = "test-fail"
    name = "Failer"
    description = "Raises on its first `fail_times` attempts; for retry and dead-letter tests."
    input_model = _FailInput
    config_model = _NoConfig

    async def run(self, ctx: AgentContext, input: _FailInput, config: _NoConfig) -> dict[str, Any]:
        attempt = int(ctx.extras.get("attempt", 1))
        if input.permanent:
            raise AgentInputError(input.message)
        if attempt <= input.fail_times:
            raise RuntimeError(f"{input.message} (attempt {attempt})")
        return {"succeeded_on_attempt": attempt}


def stuck_parser(seconds: float) -> str:
    """Stands in for a parser stuck on a hostile file; runs in the parser's child process."""
    time.sleep(seconds)
    return "done"


class StuckParserAgent(Agent):
    id = "test-stuck-parser"
    name = "Stuck parser"
    description = "Runs a parser child process that sleeps for `seconds`; for time-out and cancellation tests."
    input_model = _SleepInput
    config_model = _NoConfig
    time_limit_seconds = 30.0

    async def run(self, ctx: AgentContext, input: _SleepInput, config: _NoConfig) -> dict[str, Any]:
        return {"parsed": await ctx.parse(partial(stuck_parser, input.seconds), subject="stuck.bin")}


def test_agents() -> list[Agent]:
    return [NoopAgent(), SleepAgent(), FailingAgent(), StuckParserAgent()]
