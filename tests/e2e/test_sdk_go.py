"""The Go SDK (sdks/go, github.com/coexai/coexai-go): its own `go test` suite, run here against real
`backplane serve` and `backplane worker` processes: jobs run to completion and failure, waits bounded by a
context, typed errors, retries with one Idempotency-Key (against a loopback stand-in), the guide's snippet
(examples/guide) as a program, and its structs' JSON fields against the served OpenAPI document.

Go is Debian's golang-go (`make install` runs scripts/install-system-packages.sh, which installs it when
missing); without it this test fails rather than skips, so a CI machine lacking it cannot pass quietly. The SDK
uses the standard library only: the build runs with GOPROXY=off (nothing is downloaded) and its cache in the
system's temp directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backplane.core.config import Settings
from tests.fixtures.auth import PASSWORD
from tests.fixtures.processes import backplane_processes

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "sdks" / "go"
# Tests of sdks/go/*_test.go that must have run and passed (and none may be skipped): a renamed or lost
# test shows here.
GO_TESTS = (
    "TestJobRunsToCompletion",
    "TestAFailedJobCarriesItsError",
    "TestWaitForCompletionEndsWithTheContext",
    "TestServiceErrorsAreTyped",
    "TestModelsFollowTheOpenAPIDocument",
    "TestTheGuidesExampleRuns",
    "TestCreateRetries5xxAnd429WithOneIdempotencyKey",
    "TestVersionIsTheChangelogsNewest",
)


@pytest.fixture(scope="module")
def go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is needed (`make install` installs Debian's golang-go: scripts/install-system-packages.sh)")
    return go


@pytest.fixture
def service(settings: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
        "AGENT_TEST_MODE": "true",
        "RATE_LIMITS_ENABLED": "false",
        "JOB_HEARTBEAT_SECONDS": "0.3",
        "JOB_RETRY_BASE_SECONDS": "0.1",
        "JOB_SWEEP_INTERVAL_SECONDS": "0.3",
    }
    with backplane_processes(env) as base_url:
        yield base_url


def _api_key(base_url: str) -> str:
    """A new account's API key with the read and write scopes."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        email = f"sdk-go{time.monotonic_ns()}@example.com"
        registered = http.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Go Pher", "company_name": "SDK Co"},
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        access = login.json()["tokens"]["access_token"]
        key = http.post(
            "/v1/api-keys",
            json={"name": "go sdk", "scopes": ["read", "write"]},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert key.status_code == 201, key.text
        return str(key.json()["key"])


def test_the_go_sdk_suite_passes_against_real_processes(go: str, service: str) -> None:
    cache = Path(tempfile.gettempdir()) / f"backplane-sdk-go-{os.getuid()}"
    env = {
        **os.environ,
        "COEXAI_BASE_URL": f"{service}/v1",
        "COEXAI_API_KEY": _api_key(service),
        "GOCACHE": str(cache / "build"),
        "GOPATH": str(cache / "path"),
        "GOPROXY": "off",  # standard library only: nothing to download, and nothing may be
        "GOFLAGS": "",
        "GO111MODULE": "on",
    }
    done = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."], cwd=SDK, env=env, capture_output=True, text=True, timeout=180
    )
    print(done.stdout)  # go test's own report, shown by pytest -s or with a failure
    assert done.returncode == 0, f"go test failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert "--- SKIP" not in done.stdout, done.stdout
    for name in GO_TESTS:
        assert f"--- PASS: {name} " in done.stdout, f"{name} did not pass:\n{done.stdout}"
