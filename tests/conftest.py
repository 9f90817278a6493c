from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from backplane.app import create_app
from backplane.core import security
from backplane.core.config import AuthSettings, DatabaseSettings, EmailSettings, Environment, RedisSettings, Settings
from backplane.models import metadata
from tests.fixtures import database
from tests.fixtures.auth import Api
from tests.fixtures.smtp import Mailbox, start_smtp
from tests.fixtures.worker import run_burst_worker

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"

# Argon2id at its production cost takes about a quarter of a second of CPU and 64 MiB per hash, by design, and
# the suite registers and signs in thousands of users: in this test process passwords are hashed with Argon2id
# at its smallest cost (the same code and hash format; a stored hash carries its own parameters). The `serve`
# processes of the end-to-end tests keep the production cost, which tests/test_crypto.py checks.
security._password_hash = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


def worker_redis_url(base_url: str, worker: str | None) -> str:
    """The Redis database of this test process. Every test flushes its database, so parallel test
    processes (pytest-xdist workers gw0, gw1, ...) each get their own: the base index minus the worker
    number (15, 14, ... from the default base 15); a serial run uses the base index itself."""
    if not worker:
        return base_url
    number = int(worker.removeprefix("gw"))
    parts = urlsplit(base_url)
    base_index = int(parts.path.strip("/") or 0)
    if number > base_index:
        raise pytest.UsageError(
            f"TEST_REDIS_URL {base_url}: test worker {worker} would need Redis database {base_index - number}; "
            "use a higher base index or fewer workers (-n)"
        )
    return urlunsplit(parts._replace(path=f"/{base_index - number}"))


# Fixtures shared by several folders: PostgreSQL and Redis behind proxies a test can stop (tests/fixtures/proxy.py),
# and the `serve` and `worker` processes the SDK suites share (tests/fixtures/sdk_service.py; sdks/python/tests too).
pytest_plugins = ["tests.fixtures.proxy", "tests.fixtures.sdk_service"]

TEST_REDIS_URL = worker_redis_url(
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), os.environ.get("PYTEST_XDIST_WORKER")
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own per test process (session), so parallel workers never share one."""
    url = database.new_database_url()
    database.create_and_migrate(url, durable=False)
    yield url
    database.drop(url)


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller, port = start_smtp(mailbox)
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    smtp[0].messages.clear()
    return smtp[0]


@pytest.fixture
def settings(database_url: str, smtp: tuple[Mailbox, int], tmp_path: os.PathLike[str]) -> Settings:
    return Settings(
        environment=Environment.test,
        public_base_url="http://testserver",
        database=DatabaseSettings(url=database_url, pool_size=5),
        redis=RedisSettings(url=TEST_REDIS_URL),
        auth=AuthSettings(secret_key=TEST_SECRET_KEY),
        email=EmailSettings(smtp_host="127.0.0.1", smtp_port=smtp[1], email_from="Backplane <no-reply@example.com>"),
        storage_dir=tmp_path,
        rate_limits_enabled=False,  # on in tests/test_rate_limits.py, which is about them
        free_license_seats=0,  # organizations start without licenses; tests/access/ tests the free one
        # Not built here, whatever `make install` built: mailed links open the API's pages (the dashboard's
        # are tested in tests/auth/test_account_mail.py, test_dashboard_files.py and e2e/test_dashboard.py).
        dashboard_dir=Path(tmp_path) / "dashboard-not-built",
    )


# Children before parents, so that no foreign key refuses a delete.
_DELETE_ALL = (
    "BEGIN; " + " ".join(f'DELETE FROM "{table.name}";' for table in reversed(metadata.sorted_tables)) + " COMMIT"
)


@pytest.fixture(autouse=True)
async def _clean_state(database_url: str) -> AsyncIterator[None]:
    """Each test starts from empty tables and an empty Redis database.

    DELETE, not TRUNCATE: on tables holding a test's few rows it takes a millisecond, where TRUNCATE, which
    replaces every table's files, took a third of a second per test."""
    redis = Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    yield
    url = make_url(database_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await connection.execute(_DELETE_ALL)
    finally:
        await connection.close()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def raw_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client`, but an unhandled error comes back as the 500 a caller would get instead of
    being raised into the test, so "a 4xx, never a 500" fails as a status mismatch."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient, app: object) -> Api:
    return Api(client, app.state.queue, app.state.settings)  # type: ignore[attr-defined]


@pytest.fixture
def run_tasks(settings: Settings):  # type: ignore[no-untyped-def]
    """Run every queued arq task to completion with a real (burst) worker."""

    async def _run() -> int:
        worker = await run_burst_worker(settings)
        return worker.jobs_complete

    return _run
