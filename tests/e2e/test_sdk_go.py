"""The Go SDK (sdks/go, github.com/coexai/coexai-go): its own `go test` suite, run here against the real
`backplane serve` and `backplane worker` processes the SDK suites share: jobs run to completion and failure,
batches, listing page by page, cancel and retry, output formats, files (the three-step pre-signed upload) read
by a job, webhook endpoints and a real delivery verified in both signature schemes, events, waits bounded by a
context, typed errors (404, 422 with details, 401, another organization's job), retries with one
Idempotency-Key (against a loopback stand-in), the examples (the guide's snippet; files and webhooks) as
programs, and its structs' JSON fields against the served OpenAPI document.

Go is Debian's golang-go (`make install` runs scripts/install-system-packages.sh, which installs it when
missing); without it this test fails rather than skips, so a CI machine lacking it cannot pass quietly. The SDK
uses the standard library only: the build runs with GOPROXY=off (nothing is downloaded) and its cache in the
system's temp directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.sdk_service import SdkService, sign_up

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
    "TestTheFilesAndWebhooksExampleRuns",
    "TestFilesUploadedAndReadByAJob",
    "TestJobsListCancelRetryAndBatch",
    "TestOutputFormats",
    "TestAgents",
    "TestWebhooksAndAVerifiedDelivery",
    "TestTypedErrorsAndForeignIDs",
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
def service(sdk_service: SdkService) -> str:
    """The processes the SDK suites share (tests/fixtures/sdk_service.py)."""
    return sdk_service.base_url


def test_the_go_sdk_suite_passes_against_real_processes(go: str, service: str) -> None:
    cache = Path(tempfile.gettempdir()) / f"backplane-sdk-go-{os.getuid()}"
    env = {
        **os.environ,
        "COEXAI_BASE_URL": f"{service}/v1",
        # The tests of the guide's calls use this account; the others sign up organizations of their own
        # (surface_test.go's freshClient), so that what each lists is only what it made.
        "COEXAI_API_KEY": sign_up(service, name="go-sdk").api_key,
        "GOCACHE": str(cache / "build"),
        "GOPATH": str(cache / "path"),
        "GOPROXY": "off",  # standard library only: nothing to download, and nothing may be
        "GOFLAGS": "",
        "GO111MODULE": "on",
    }
    done = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."], cwd=SDK, env=env, capture_output=True, text=True, timeout=300
    )
    print(done.stdout)  # go test's own report, shown by pytest -s or with a failure
    assert done.returncode == 0, f"go test failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert "--- SKIP" not in done.stdout, done.stdout
    for name in GO_TESTS:
        assert f"--- PASS: {name} " in done.stdout, f"{name} did not pass:\n{done.stdout}"
