"""The TypeScript SDK (sdks/typescript, @coexai/sdk): its own `node --test` suite, run here against real
`backplane serve` and `backplane worker` processes: jobs, files (the three-step pre-signed upload),
retries and idempotency, typed errors, webhook deliveries verified by `webhooks.handler`, the guide's
snippets (examples/), and its modelled fields against the served OpenAPI document; then the built SDK in
headless Chromium (no Node there: global fetch and Web Crypto only)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.sdk_service import SdkService, sign_up

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "sdks" / "typescript"
CHROMIUM = "/usr/bin/chromium"


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
def service(sdk_service: SdkService) -> str:
    """The processes the SDK suites share (tests/fixtures/sdk_service.py)."""
    return sdk_service.base_url


def _api_key(base_url: str) -> str:
    """A new account's API key with every scope (the webhook tests need `admin`)."""
    return sign_up(base_url, name="typescript-sdk").api_key


def test_the_typescript_sdk_suite_passes_against_real_processes_and_the_sdk_runs_in_a_browser(
    npm: str, service: str
) -> None:
    """One service for both (starting and stopping the processes costs more than either part)."""
    key = _api_key(service)
    env = {
        **os.environ,
        "COEXAI_BASE_URL": f"{service}/v1",
        "COEXAI_API_KEY": key,
        "NO_COLOR": "1",
    }
    env.pop("COEXAI_WEBHOOK_SECRET", None)
    done = subprocess.run([npm, "test", "--silent"], cwd=SDK, env=env, capture_output=True, text=True, timeout=240)
    print(done.stdout)  # node's own report, shown by pytest -s or with a failure
    assert done.returncode == 0, f"node --test failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert "# fail 0" in done.stdout, done.stdout
    if os.path.exists(CHROMIUM):  # `make install` puts it there; only a bare pytest run may lack it
        asyncio.run(_run_in_a_browser(service, key))


_PAGE_PREFIX = "/sdk-under-test/"

# Runs in the page: the SDK's jobs, its pre-signed upload and its Web Crypto signature checks.
_IN_THE_BROWSER = """async ([key, secret, body, headers]) => {
  const { CoExAI, WebhookVerificationError } = await import('/sdk-under-test/index.js');
  const coexai = new CoExAI({ apiKey: key, baseUrl: location.origin + '/v1', webhookSecret: secret });
  const job = await coexai.jobs.create({ agentId: 'test-noop', input: { echo: 'from a browser' } });
  const done = await coexai.jobs.waitForCompletion(job.id, { timeout: 30000 });
  const file = await coexai.files.uploadLarge(new Blob(['hello from a browser\\n'], { type: 'text/plain' }), {
    filename: 'browser.txt',
  });
  const event = await coexai.webhooks.constructEvent(body, headers);
  const signature = { 'X-CoExAI-Signature': headers['X-CoExAI-Signature'] };
  const coexaiOnly = await coexai.webhooks.constructEvent(body, signature);
  let forged = 'accepted';
  try {
    await coexai.webhooks.verify(body.replace('job_1', 'job_2'), headers);
  } catch (error) {
    forged = error instanceof WebhookVerificationError ? 'refused' : String(error);
  }
  return { status: done.status, echo: done.outputData.echo, file: file.status, event: event.data.id,
           coexaiOnly: coexaiOnly.type, forged };
}"""


async def _run_in_a_browser(service: str, key: str) -> None:
    """No Node in the page: the built SDK, served from the API's own origin (the service sends no CORS
    headers), creates and waits for a job, uploads a file in three steps and checks both signature
    schemes of a body signed by the service's own signing code."""
    from playwright.async_api import Route, async_playwright

    from backplane.webhooks.signing import encode_body, new_secret, payload, signed_headers

    secret = new_secret()
    now = datetime.now(UTC)
    body = encode_body(payload("job.completed", now, "wh_1", {"id": "job_1", "status": "completed"}))
    headers = signed_headers(secret, body, message_id="evt_1", sent_at=now, event_type="job.completed", delivery_id="d")

    async def serve_sdk(route: Route) -> None:
        name = urlsplit(route.request.url).path.removeprefix(_PAGE_PREFIX)
        if name == "index.html":
            await route.fulfill(body="<!doctype html><title>@coexai/sdk</title>", content_type="text/html")
        elif (SDK / "dist" / name).is_file() and "/" not in name.replace("resources/", "", 1):
            await route.fulfill(path=SDK / "dist" / name, content_type="text/javascript")
        else:
            await route.fulfill(status=404)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.route(f"{service}{_PAGE_PREFIX}**", serve_sdk)
            await page.goto(f"{service}{_PAGE_PREFIX}index.html")
            result = await page.evaluate(_IN_THE_BROWSER, [key, secret, body.decode(), headers])
        finally:
            await browser.close()
    assert result == {
        "status": "completed",
        "echo": "from a browser",
        "file": "ready",
        "event": "job_1",
        "coexaiOnly": "job.completed",
        "forged": "refused",
    }, result
    assert errors == []
