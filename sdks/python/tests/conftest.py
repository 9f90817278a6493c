"""The SDK's tests run against real `backplane serve` and `backplane worker` processes, started once per
module (they take seconds to start), over a database of the SDK tests' own and the test process's Redis
database (flushed first). Each test signs up a fresh account, so tests share the processes, not data.

This folder is not a package (the repository's own tests are the `tests` package), so its modules are
named `test_sdk_*` to stay unique in the suite.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis import Redis
from tests.conftest import TEST_REDIS_URL, TEST_SECRET_KEY
from tests.fixtures import database
from tests.fixtures.net import free_port
from tests.fixtures.processes import backplane_processes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PASSWORD = "SecurePass123!"

FAST_JOBS = {
    "AGENT_TEST_MODE": "true",  # test-noop, test-sleep, test-fail beside the four agents
    "JOB_HEARTBEAT_SECONDS": "0.3",
    "JOB_STALL_SECONDS": "2",
    "JOB_RETRY_BASE_SECONDS": "0.1",
    "JOB_SWEEP_INTERVAL_SECONDS": "0.3",
    "RATE_LIMITS_ENABLED": "false",  # each test signs up, more than the 5 a minute allowed per address
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the webhook receiver is on loopback
}


@pytest.fixture(scope="session")
def sdk_database_url() -> Iterator[str]:
    """One database for the SDK's modules in this test process (migrating takes seconds)."""
    url = database.new_database_url()
    database.create_and_migrate(url)
    yield url
    database.drop(url)


@pytest.fixture(scope="module")
def backplane_env(sdk_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    redis = Redis.from_url(TEST_REDIS_URL)
    redis.flushdb()
    redis.close()
    return {
        "DATABASE_URL": sdk_database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": TEST_SECRET_KEY,
        "STORAGE_DIR": str(tmp_path_factory.mktemp("files")),
        "SECRETS_DIR": str(tmp_path_factory.mktemp("secrets")),
        "EMAIL_OUTBOX_DIR": str(tmp_path_factory.mktemp("mail")),  # sign-up mail, not in the repository's var/
        **FAST_JOBS,
    }


@pytest.fixture(scope="module")
def base_url(backplane_env: dict[str, str]) -> Iterator[str]:
    port = free_port()  # named beforehand: the pre-signed upload URLs point at PUBLIC_BASE_URL
    env = {**backplane_env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    with backplane_processes(env, port=port) as url:
        yield url


@dataclass
class Account:
    email: str
    api_key: str
    access_token: str
    organization_id: str


def sign_up(base_url: str, *, scopes: tuple[str, ...] = ("read", "write", "admin")) -> Account:
    """A new user and organization (with the free plan's one-seat license), and an API key of theirs."""
    email = f"sdk-{secrets.token_hex(6)}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Sdk Dev", "company_name": "SDK Co"},
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        access = login.json()["tokens"]["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        key = http.post("/v1/api-keys", json={"name": "sdk", "scopes": list(scopes)}, headers=bearer)
        assert key.status_code == 201, key.text
        me = http.get("/v1/users/me", headers=bearer).json()
    return Account(email, key.json()["key"], access, me["organization"]["id"])


@pytest.fixture
def account(base_url: str) -> Account:
    return sign_up(base_url)
