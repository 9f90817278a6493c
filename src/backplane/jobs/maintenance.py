"""Agents under maintenance: staff stop an agent's jobs from being handed out, without refusing any.

While an agent is under maintenance (a row in `agent_maintenance`), its new jobs are accepted and
wait `queued` with a `status_reason` saying why, and no dispatcher hands one out (the dispatcher's
query, the sweeper's and a completion's slot handoff all skip them). Jobs handed out before it began
still run. Ending it clears the reasons, and the organizations with waiting jobs are dispatched at
once (by the API; from the command line, by the sweeper within JOB_SWEEP_INTERVAL_SECONDS), best
priority first, then oldest, as always.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.agents.registry import get_agent
from backplane.core.db import utcnow
from backplane.core.errors import NotFound
from backplane.jobs.models import AgentMaintenance, Job, JobStatus
from backplane.staff import service as staff

Actor = tuple[uuid.UUID | None, str]


@dataclass(frozen=True)
class AgentState:
    agent_id: str
    maintenance: bool
    reason: str | None = None
    since: datetime | None = None


def status_reason(agent_id: str, reason: str) -> str:
    return f"The agent {agent_id} is under maintenance: {reason}"[:600]


def _known(agent_id: str) -> None:
    if get_agent(agent_id) is None:
        raise NotFound("No agent with this id.")


async def states(session: AsyncSession) -> dict[str, AgentMaintenance]:
    """Every agent under maintenance, by id."""
    rows = (await session.execute(select(AgentMaintenance))).scalars()
    return {row.agent_id: row for row in rows}


def state_of(agent_id: str, rows: dict[str, AgentMaintenance]) -> AgentState:
    row = rows.get(agent_id)
    if row is None:
        return AgentState(agent_id, maintenance=False)
    return AgentState(agent_id, maintenance=True, reason=row.reason, since=row.since)


async def start(session: AsyncSession, agent_id: str, reason: str, actor: Actor) -> AgentState:
    """Put the agent under maintenance (or change the reason of one that is): its waiting jobs say why."""
    _known(agent_id)
    row = await session.get(AgentMaintenance, agent_id, with_for_update=True)
    if row is None:
        row = AgentMaintenance(agent_id=agent_id, reason=reason, since=utcnow(), started_by=actor[1])
        session.add(row)
    else:
        row.reason = reason
    await session.execute(
        update(Job)
        .where(Job.agent_id == agent_id, Job.status == JobStatus.QUEUED, Job.dispatch_token.is_(None))
        .values(status_reason=status_reason(agent_id, reason))
    )
    staff.record(session, actor, "agent.maintenance_started", target_id=agent_id, details={"reason": reason})
    await session.flush()
    return AgentState(agent_id, maintenance=True, reason=row.reason, since=row.since)


async def end(session: AsyncSession, agent_id: str, actor: Actor) -> tuple[AgentState, list[uuid.UUID]]:
    """End the agent's maintenance: its state, and the organizations whose waiting jobs may now go."""
    _known(agent_id)
    row = await session.get(AgentMaintenance, agent_id, with_for_update=True)
    if row is None:
        return AgentState(agent_id, maintenance=False), []
    await session.delete(row)
    waiting = await session.execute(
        update(Job)
        .where(Job.agent_id == agent_id, Job.status == JobStatus.QUEUED, Job.dispatch_token.is_(None))
        .values(status_reason=None)
        .returning(Job.organization_id)
    )
    organizations = sorted(set(waiting.scalars()))
    staff.record(session, actor, "agent.maintenance_ended", target_id=agent_id, details={})
    await session.flush()
    return AgentState(agent_id, maintenance=False), organizations


@functools.cache
def _under_maintenance() -> Select[str, str]:
    """`note_why_waiting`'s statement, built once (see `lifecycle._HAND_OUT`)."""
    return select(AgentMaintenance.agent_id, AgentMaintenance.reason).where(
        AgentMaintenance.agent_id.in_(bindparam("agent_ids", expanding=True))
    )


async def note_why_waiting(session: AsyncSession, jobs: Sequence[Job]) -> None:
    """New jobs that their creation's hand-out left waiting: each one whose agent is under maintenance
    says why (`status_reason`, written with the creation's commit). The hand-out never takes such a job,
    so a job it took needs no question, and a creation that takes a free slot makes none."""
    if not jobs:
        return
    rows = await session.execute(_under_maintenance(), {"agent_ids": sorted({job.agent_id for job in jobs})})
    reasons = {agent_id: status_reason(agent_id, reason) for agent_id, reason in rows.all()}
    for job in jobs:
        if job.agent_id in reasons:
            job.status_reason = reasons[job.agent_id]
