"""Webhook signing secrets are stored encrypted with ENCRYPTION_KEYS; deliveries still verify with the
secret shown once, across a rotation of the keys and `backplane secrets rotate`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from backplane.app import create_app
from backplane.core.config import Settings
from backplane.core.crypto import DecryptionFailed, Encryptor
from backplane.core.db import create_engine, utcnow
from tests.fixtures.auth import Api
from tests.webhooks.conftest import (
    Receiver,
    attempt_at,
    create_webhook,
    deliveries,
    dispatch_and_deliver,
    record,
    verify_guide,
    worker_context,
)

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()
JOB = {"id": "job_3f9c2a7b1e4d5c6a7b8c9d0e", "status": "completed"}


def with_keys(settings: Settings, *keys: str) -> Settings:
    return settings.model_copy(update={"encryption_keys": SecretStr(",".join(keys))})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API (the `client` fixture) encrypts with OLD_KEY, as before an operator rotates."""
    return with_keys(settings, OLD_KEY)


async def stored_row(settings: Settings, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's row as PostgreSQL holds it, every column."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(text("SELECT * FROM webhook_endpoints WHERE id = :id"), {"id": endpoint_id})
            ).one()
    finally:
        await engine.dispose()
    return dict(row._mapping)


def readable_with(row: dict[str, Any], *keys: str) -> set[str]:
    """The row's values that decrypt with exactly these keys."""
    encryptor = Encryptor([key.encode() for key in keys])
    found = set()
    for value in row.values():
        if isinstance(value, str):
            with contextlib.suppress(DecryptionFailed, UnicodeEncodeError):
                found.add(encryptor.decrypt_text(value))
    return found


def secrets_rotate(settings: Settings, *keys: str) -> subprocess.CompletedProcess[str]:
    """`backplane secrets rotate`, a real process configured from the environment like production's."""
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "ENCRYPTION_KEYS": ",".join(keys),
    }
    return subprocess.run(
        [sys.executable, "-m", "backplane.cli", "secrets", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_database_holds_no_plain_signing_secret(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=account.headers)
    assert rotated.status_code == 200, rotated.text
    old, new = hook["secret"], rotated.json()["secret"]

    row = await stored_row(settings, hook["id"])
    for secret in (old, new):
        assert not any(secret.removeprefix("whsec_") in str(value) for value in row.values())
    assert readable_with(row, OLD_KEY) == {old, new}  # the current and the previous secret, encrypted
    assert readable_with(row, NEW_KEY) == set()

    # Shown at creation and rotation only: never read back.
    shown = await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)
    assert shown.status_code == 200
    assert old not in shown.text and new not in shown.text and "secret" not in shown.json()


async def test_deliveries_verify_across_a_rotation_of_encryption_keys(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=account.headers)
    previous, current = hook["secret"], rotated.json()["secret"]

    def assert_signed(request_index: int) -> None:
        request = receiver.received[request_index]
        body = request.body.decode()
        assert verify_guide(body, request.headers["x-coexai-signature"], current)
        assert verify_guide(body, request.headers["x-coexai-signature-previous"], previous)
        for secret in (previous, current):
            assert Webhook(secret).verify(request.body, request.headers)["event"] == "job.completed"

    # The operator puts a new key first; the old one, second, still decrypts what is stored.
    await record(settings, account.organization_id, "job.completed", JOB)
    async with worker_context(with_keys(settings, NEW_KEY, OLD_KEY)) as ctx:
        await dispatch_and_deliver(ctx)
    assert len(receiver.received) == 1
    assert_signed(0)

    done = secrets_rotate(settings, NEW_KEY, OLD_KEY)
    assert done.returncode == 0, done.stderr
    assert "1 webhook endpoint re-encrypted with the newest encryption key" in done.stdout
    row = await stored_row(settings, hook["id"])
    assert readable_with(row, NEW_KEY) == {previous, current}
    assert readable_with(row, OLD_KEY) == set()

    # The old key can go: the worker and the API sign with the new one alone.
    await record(settings, account.organization_id, "job.completed", JOB)
    async with worker_context(with_keys(settings, NEW_KEY)) as ctx:
        await dispatch_and_deliver(ctx)
    assert len(receiver.received) == 2
    assert_signed(1)
    application = create_app(with_keys(settings, NEW_KEY))
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        ping = await http.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)
    assert ping.status_code == 200, ping.text
    assert ping.json()["status"] == "succeeded"
    request = receiver.received[-1]
    assert request.headers["x-coexai-event"] == "webhook.test"
    assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], current)


async def test_secrets_rotate_refuses_a_secret_no_key_can_read_and_changes_nothing(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    before = await stored_row(settings, hook["id"])

    done = secrets_rotate(settings, NEW_KEY)  # OLD_KEY dropped before rotating: a mistake
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        f"backplane: cannot decrypt the signing secret of webhook {hook['id']} with ENCRYPTION_KEYS; "
        "nothing was changed (put the key it was encrypted with back in the list)"
    )
    assert await stored_row(settings, hook["id"]) == before
    assert readable_with(before, OLD_KEY) == {hook["secret"]}


async def test_a_delivery_whose_secret_no_key_reads_waits_for_the_key_unsent_and_uncounted(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    await record(settings, account.organization_id, "job.completed", JOB)
    async with worker_context(with_keys(settings, NEW_KEY)) as ctx:  # OLD_KEY dropped too early
        await dispatch_and_deliver(ctx)
    assert receiver.received == []
    [waiting] = await deliveries(client, account, hook)
    assert (waiting["status"], waiting["attempt_count"]) == ("pending", 0)

    async with worker_context(with_keys(settings, NEW_KEY, OLD_KEY)) as ctx:  # the key is back
        assert await attempt_at(ctx, waiting["id"], utcnow()) == "succeeded"
    [request] = receiver.received
    assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], hook["secret"])
