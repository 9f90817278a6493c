"""`backplane users find | orgs show | jobs retry | jobs dead-letters | webhooks replay | check`, run as an
operator runs them against the test database and Redis."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from backplane.core.config import Settings
from backplane.core.db import utcnow
from tests.fixtures.auth import Api
from tests.fixtures.net import refused_port
from tests.fixtures.processes import run_cli
from tests.jobs.conftest import JobsWorker, wait_for
from tests.licenses.conftest import acquire
from tests.webhooks.conftest import Receiver, create_webhook, dispatch_and_deliver, record, run_due, worker_context

UNKNOWN_JOB = "job_" + "0" * 24
UNKNOWN_ENDPOINT = "wh_" + "0" * 24
UNKNOWN_ORG = "00000000-0000-4000-8000-000000000000"


def backplane(settings: Settings, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "SECRETS_DIR": str(tmp_path / "secrets"),
        "STORAGE_DIR": str(settings.storage_dir),
        "AGENT_TEST_MODE": "true",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_RETRY_JITTER": "0",
        **env,
    }
    return run_cli(*args, env=environment, cwd=tmp_path)


def answer(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str], status: int, message: str) -> None:
    assert (result.returncode, result.stdout) == (status, ""), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def staff_actions(client: httpx.AsyncClient, api: Api) -> list[dict[str, Any]]:
    staff = await api.staff()
    response = await client.get("/v1/staff/actions", headers=staff.headers)
    assert response.status_code == 200, response.text
    actions: list[dict[str, Any]] = response.json()["data"]
    return actions


# --- users find, orgs show ---------------------------------------------------------------------


async def test_users_find_shows_the_user_and_their_organizations(api: Api, settings: Settings, tmp_path: Path) -> None:
    account = await api.register("Someone@Example.com")
    found = answer(backplane(settings, tmp_path, "users", "find", "SOMEONE@example.com", "--json"))
    assert (found["id"], found["email"], found["is_staff"], found["email_verified"]) == (
        account.user_id, "someone@example.com", False, False,
    )  # fmt: skip
    assert [(o["id"], o["role"]) for o in found["organizations"]] == [(account.organization_id, "owner")]
    text = backplane(settings, tmp_path, "users", "find", "someone@example.com")
    assert text.returncode == 0 and text.stdout.startswith("someone@example.com (Test User) id ")
    assert f"owner   {account.organization_id}" in text.stdout

    refused(backplane(settings, tmp_path, "users", "find", "nobody@example.com"), 1, "no user has the email address")
    missing = backplane(
        settings, tmp_path, "users", "find", "x@example.com", DATABASE_URL=settings.database.url + "_none"
    )
    refused(missing, 1, "backplane: PostgreSQL or Redis failed: DBAPIError: ")


async def test_orgs_show_has_the_plan_usage_licenses_and_live_seats(
    api: Api, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    account = await api.register()
    license_ = await api.issue_license(account, tier="pro", seats=3)
    for machine in ("machine-1", "machine-2"):
        assert (await acquire(account, license_["key_string"], machine)).status_code == 200
    created = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=account.headers)
    assert created.status_code == 201, created.text

    shown = answer(backplane(settings, tmp_path, "orgs", "show", account.organization_id, "--json"))
    assert (shown["id"], shown["plan"]["name"], shown["subscription"]) == (account.organization_id, "free", None)
    assert shown["usage"]["jobs_created"] == 1
    assert shown["usage"]["jobs_counted_by_quota"] == 1
    [only] = shown["licenses"]
    assert (only["id"], only["seats"], only["seats_in_use"]) == (license_["id"], 3, 2)
    assert shown["live_seats"] == 2
    text = backplane(settings, tmp_path, "orgs", "show", account.organization_id)
    assert "live seats: 2" in text.stdout and f"license {license_['id']} pro: 2/3 seats, active" in text.stdout

    refused(backplane(settings, tmp_path, "orgs", "show", UNKNOWN_ORG), 1, f"no organization has the id {UNKNOWN_ORG}")
    refused(backplane(settings, tmp_path, "orgs", "show", "acme"), 2, "not an organization id (a UUID): 'acme'")


# --- jobs --------------------------------------------------------------------------------------


async def test_a_dead_lettered_job_is_listed_and_retried_through_its_lifecycle(
    api: Api, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    account, other = await api.register(), await api.register()
    worker = await JobsWorker(settings).start()
    try:
        created = await client.post(
            "/v1/jobs", json={"agent_id": "test-fail", "input_data": {"message": "boom"}}, headers=account.headers
        )
        job_id = created.json()["id"]
        assert (await wait_for(client, account, job_id))["status"] == "dead_letter"
        done = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=account.headers)
        assert (await wait_for(client, account, done.json()["id"]))["status"] == "completed"
    finally:
        await worker.stop()

    listed = answer(backplane(settings, tmp_path, "jobs", "dead-letters", "--json"))
    assert [(j["id"], j["organization_id"], j["attempts"]) for j in listed] == [
        (job_id, account.organization_id, settings.job_max_attempts)
    ]
    assert answer(backplane(settings, tmp_path, "jobs", "dead-letters", "--org", other.organization_id, "--json")) == []
    text = backplane(settings, tmp_path, "jobs", "dead-letters", "--org", account.organization_id)
    assert text.stdout.startswith(job_id) and "boom" in text.stdout

    retried = answer(backplane(settings, tmp_path, "jobs", "retry", job_id, "--json"))
    assert (retried["id"], retried["status"]) == (job_id, "queued")
    worker = await JobsWorker(settings).start()
    try:
        assert (await wait_for(client, account, job_id))["status"] == "dead_letter"
    finally:
        await worker.stop()
    history = (await client.get(f"/v1/jobs/{job_id}/history", headers=account.headers)).json()
    assert [t["reason"] for t in history].count("retried by the user") == 1
    [action] = [a for a in await staff_actions(client, api) if a["action"] == "job.retry"]
    assert (action["actor"].startswith("cli:"), action["target_id"], action["organization_id"]) == (
        True, job_id, account.organization_id,
    )  # fmt: skip
    assert action["details"] == {"previous_status": "dead_letter"}

    refused(backplane(settings, tmp_path, "jobs", "retry", done.json()["id"]), 1, "this one is completed")
    refused(backplane(settings, tmp_path, "jobs", "retry", UNKNOWN_JOB), 1, f"no job has the id '{UNKNOWN_JOB}'")
    refused(backplane(settings, tmp_path, "jobs", "retry", "job_x"), 2, "not a job id")
    refused(backplane(settings, tmp_path, "jobs", "dead-letters", "--org", "x"), 2, "not an organization id")


# --- webhooks replay ---------------------------------------------------------------------------


async def test_webhooks_replay_sends_each_event_since_then_once(
    api: Api, client: httpx.AsyncClient, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url("/replayed"), ["job.completed"])
    before = utcnow()
    first = await record(settings, account.organization_id, "job.completed", {"id": "job_1"})
    await record(settings, account.organization_id, "payment.failed", {"id": "in_1"})  # not subscribed
    between = utcnow()
    second = await record(settings, account.organization_id, "job.completed", {"id": "job_2"})
    async with worker_context(settings) as ctx:
        await dispatch_and_deliver(ctx)
        assert sorted(r.headers["webhook-id"] for r in receiver.to("/replayed")) == sorted([first, second])
        receiver.reset()

        replay = ("webhooks", "replay", "--endpoint", hook["id"], "--since")
        replayed = answer(backplane(settings, tmp_path, *replay, before.isoformat(), "--json"))
        assert [d["event_id"] for d in replayed["deliveries"]] == [first, second]
        await run_due(settings, ctx["redis"])
        assert sorted(r.headers["webhook-id"] for r in receiver.to("/replayed")) == sorted([first, second])

        receiver.reset()
        text = backplane(settings, tmp_path, *replay, between.isoformat())
        assert (text.returncode, text.stdout.strip()) == (0, f"1 delivery to {hook['id']} queued"), text.stderr
        await run_due(settings, ctx["redis"])
        assert [r.headers["webhook-id"] for r in receiver.to("/replayed")] == [second]

    actions = [a for a in await staff_actions(client, api) if a["action"] == "webhook.replay"]
    assert sorted(a["details"]["events"] for a in actions) == [1, 2]
    assert {a["target_id"] for a in actions} == {hook["id"]}

    later = (utcnow() + timedelta(days=1)).isoformat()
    none = answer(backplane(settings, tmp_path, "webhooks", "replay", "--endpoint", hook["id"], "--since", later,
                            "--json"))  # fmt: skip
    assert none["deliveries"] == []
    replay = ("webhooks", "replay", "--endpoint")
    refused(backplane(settings, tmp_path, *replay, UNKNOWN_ENDPOINT, "--since", later), 1, "no webhook endpoint")
    refused(backplane(settings, tmp_path, *replay, "wh_1", "--since", later), 2, "not a webhook endpoint id")
    refused(backplane(settings, tmp_path, *replay, hook["id"], "--since", "yesterday"), 2, "not an ISO 8601 date")
    refused(backplane(settings, tmp_path, *replay, hook["id"], "--since", "2026-01-01T00:00"), 2, "give a time zone")


# --- check -------------------------------------------------------------------------------------


def test_check_passes_when_everything_answers(settings: Settings, tmp_path: Path) -> None:
    results = answer(backplane(settings, tmp_path, "check", "--json"))
    assert [(r["name"], r["ok"]) for r in results] == [
        ("configuration", True), ("database", True), ("redis", True), ("storage", True), ("stripe", True),
    ]  # fmt: skip
    assert results[-1]["detail"] == "not configured (local billing mode)"
    text = backplane(settings, tmp_path, "check")
    assert text.stdout.splitlines()[2].startswith("ok   redis")


def test_check_fails_when_redis_or_storage_does_not_answer(settings: Settings, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the storage directory should be")
    with refused_port() as port:
        result = backplane(
            settings, tmp_path, "check", "--json", REDIS_URL=f"redis://127.0.0.1:{port}/0", STORAGE_DIR=str(blocked)
        )
    assert result.returncode == 1, result.stderr
    results = {r["name"]: r for r in json.loads(result.stdout)}
    assert [name for name, r in results.items() if not r["ok"]] == ["redis", "storage"]
    assert "Traceback" not in result.stderr
    text = backplane(settings, tmp_path, "check", DATABASE_URL=settings.database.url + "_missing")
    assert text.returncode == 1
    assert text.stdout.splitlines()[1].startswith("FAIL database")
