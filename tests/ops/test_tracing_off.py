"""Traces off (no OTEL_EXPORTER_OTLP_ENDPOINT, as in every other test): no trace context stored or carried."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from backplane.core import tracing
from backplane.core.config import Settings
from tests.fixtures.auth import Account, Api
from tests.jobs.conftest import JobsWorker, wait_for


async def test_without_tracing_nothing_is_stored(settings: Settings, owner_with_job: tuple[Account, str]) -> None:
    account, job_id = owner_with_job
    assert not tracing.active()
    engine = create_async_engine(settings.database.url)
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    text(
                        "SELECT (SELECT array_agg(trace_context) FROM jobs WHERE id = :job),"
                        " (SELECT array_agg(trace_context) FROM events WHERE organization_id = :organization)"
                    ),
                    {"job": job_id, "organization": account.organization_id},
                )
            ).one()
    finally:
        await engine.dispose()
    assert tuple(stored) == ([None], [None])  # the job, and its job.completed event


@pytest.fixture
async def owner_with_job(api: Api, client: httpx.AsyncClient, settings: Settings) -> tuple[Account, str]:
    """A job created and run to completion (with its `job.completed` event) while tracing is off."""
    account = await api.register()
    worker = await JobsWorker(settings).start()
    try:
        created = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=account.headers)
        assert created.status_code == 201, created.text
        assert (await wait_for(client, account, created.json()["id"]))["status"] == "completed"
    finally:
        await worker.stop()
    return account, created.json()["id"]
