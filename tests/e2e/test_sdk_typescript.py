"""The TypeScript SDK (sdks/typescript, @coexai/sdk): its own `node --test` suite, run here against real
`backplane serve` and `backplane worker` processes: jobs, files (the three-step pre-signed upload),
retries and idempotency, typed errors, webhook deliveries verified by `webhooks.handler`, the guide's
snippet (examples/guide.ts), and its modelled fields against the served OpenAPI document."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backplane.core.config import Settings
from tests.fixtures.auth import PASSWORD
from tests.fixtures.net import free_port
from tests.fixtures.processes import backplane_processes

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "sdks" / "typescript"


def _run(command: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(command, cwd=SDK, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def npm() -> str:
    """npm, with the SDK's locked dev dependencies installed and the SDK built."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail("node and npm are needed (`make install` installs Debian's nodejs and npm)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the TypeScript SDK needs Node 20 or later (global fetch, Web Crypto); this is {version}")
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    if not (SDK / "node_modules" / ".package-lock.json").exists():
        _run([npm, "ci", "--no-audit", "--no-fund"], env, timeout=300)
    _run([npm, "run", "build"], env, timeout=120)
    return npm


@pytest.fixture
def service(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",  # the pre-signed upload URLs point here
        "AGENT_TEST_MODE": "true",
        "RATE_LIMITS_ENABLED": "false",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",  # the tests' webhook receivers listen on loopback
        "JOB_HEARTBEAT_SECONDS": "0.3",
        "JOB_RETRY_BASE_SECONDS": "0.1",
        "JOB_SWEEP_INTERVAL_SECONDS": "0.3",
    }
    with backplane_processes(env, port=port) as base_url:
        yield base_url


def _api_key(base_url: str) -> str:
    """A new account's API key with every scope (the webhook tests need `admin`)."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        email = f"sdk-ts{time.monotonic_ns()}@example.com"
        registered = http.post(
            "/api/v1/auth/register/",
            json={"email": email, "password": PASSWORD, "full_name": "Ty Script", "company_name": "SDK Co"},
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        access = login.json()["tokens"]["access_token"]
        key = http.post(
            "/v1/api-keys",
            json={"name": "typescript sdk", "scopes": ["read", "write", "admin"]},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert key.status_code == 201, key.text
        return str(key.json()["key"])


def test_the_typescript_sdk_suite_passes_against_real_processes(npm: str, service: str) -> None:
    env = {
        **os.environ,
        "COEXAI_BASE_URL": f"{service}/v1",
        "COEXAI_API_KEY": _api_key(service),
        "NO_COLOR": "1",
    }
    env.pop("COEXAI_WEBHOOK_SECRET", None)
    done = subprocess.run([npm, "test", "--silent"], cwd=SDK, env=env, capture_output=True, text=True, timeout=240)
    print(done.stdout)  # node's own report, shown by pytest -s or with a failure
    assert done.returncode == 0, f"node --test failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert "# fail 0" in done.stdout, done.stdout
