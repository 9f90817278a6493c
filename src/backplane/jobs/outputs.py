"""A completed job's output in the format the caller asks for (`?format=`, else `Accept`), rendered once.

JSON is the job's stored output itself. Every other format is rendered by the job's agent on the first
download and kept in `job_outputs`: later downloads are served from there, never rendered again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import mimeparse
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.agents.base import Agent
from backplane.agents.reports.formats import FORMATS, OutputFormat
from backplane.core.db import utcnow
from backplane.core.errors import InvalidInput
from backplane.jobs import repository
from backplane.jobs.models import Job, RenderedOutput

JSON = FORMATS["json"]


def choose(agent_id: str, offered: Sequence[str], requested: str | None, accept: str | None) -> OutputFormat:
    """`requested` (the `format` parameter) wins; else the best of the agent's `offered` formats for `Accept`.

    No `Accept`, `*/*`, `application/json` or an unreadable header: JSON, as before formats existed.
    A format or an `Accept` the agent cannot answer: 422 naming the agent's formats.
    """
    if requested is not None:
        name = requested.strip().lower()
        if name not in offered:
            raise InvalidInput({"format": [f"{agent_id} outputs {', '.join(offered)}; not {requested!r}."]})
        return FORMATS[name]
    if accept is None or not accept.strip():
        return JSON
    formats = [FORMATS[name] for name in offered]
    # mimeparse breaks ties in favour of the last candidate: the agent's first formats (json) go last.
    candidates = list(dict.fromkeys(f.media_type for f in reversed(formats)))
    try:
        best = mimeparse.best_match(candidates, accept)
    except ValueError:  # a malformed header is ignored, as if none had been sent
        return JSON
    if not best:
        raise InvalidInput(
            {"Accept": [f"{agent_id} outputs {', '.join(offered)} ({', '.join(candidates[::-1])}); not {accept!r}."]}
        )
    return next(f for f in formats if f.media_type == best)


async def rendered(session: AsyncSession, agent: Agent, job: Job, output_format: OutputFormat) -> RenderedOutput:
    """The job's output in `output_format` (not json), rendered and stored on the first request only."""
    stored = await repository.get_rendered(session, job.id, output_format.name)
    if stored is not None:
        return stored
    assert job.output_data is not None
    content = await asyncio.to_thread(agent.render, output_format.name, job.output_data)  # CPU-bound (PDF)
    return await repository.add_rendered(
        session, job.id, output_format.name, content, output_format.content_type, utcnow()
    )
