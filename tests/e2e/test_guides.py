"""Both guides' clients against real `backplane serve` and `backplane worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest
import requests

from backplane.core.config import Settings
from tests.e2e.guide_clients import (
    VALIDATE_LICENSE_SH,
    CoditectClient,
    LicenseError,
    LicenseSessionManager,
    get_hardware_id,
    initialize_license,
)
from tests.fixtures.processes import backplane_processes
from tests.fixtures.smtp import Mailbox

pytestmark = pytest.mark.e2e
ACCESS_TTL = 2


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "SMTP_HOST": settings.email.smtp_host or "",
        "SMTP_PORT": str(settings.email.smtp_port),
        "EMAIL_FROM": settings.email.email_from,
        "ACCESS_TOKEN_TTL_SECONDS": str(ACCESS_TTL),
        "RATE_LIMITS_ENABLED": "false",  # the flow makes more auth calls than 5 a minute
        "DASHBOARD_DIR": "/nonexistent/dashboard",  # the guide's flow: mailed links open the API's pages
    }
    with backplane_processes(env) as base_url:
        yield base_url


def _wait_for_mail(mailbox: Mailbox, address: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while not mailbox.to(address):
        assert time.monotonic() < deadline, f"no email reached {address}"
        time.sleep(0.1)
    return mailbox.body(mailbox.last_to(address))


def _licensing_guide_flow(base_url: str, mailbox: Mailbox) -> None:
    client = CoditectClient(base_url=base_url)
    created = client.register("dev@example.com", "SecurePass123!", "Developer", "My Company")
    assert created["organization"]["name"] == "My Company"

    tokens = client.login("dev@example.com", "SecurePass123!")
    assert set(tokens) == {"access", "refresh"}
    me = client._request("GET", "/v1/users/me")
    assert me["user"]["email"] == "dev@example.com"
    assert me["role"] == "owner"

    # The verification mail is sent by the worker process through real SMTP; its link works.
    body = _wait_for_mail(mailbox, "dev@example.com")
    link = next(word for word in body.split() if "/verify-email/?token=" in word)
    verify = requests.get(base_url + link[link.index("/api/") :], timeout=10)
    assert verify.status_code == 200, verify.text

    # The access token expires; the client's 401 -> refresh -> retry path keeps it working.
    first_access = client.access_token
    time.sleep(ACCESS_TTL + 1.1)
    me = client._request("GET", "/v1/users/me")
    assert me["user"]["email_verified"] is True
    assert client.access_token != first_access

    # The guide's client keeps one refresh token for all its refreshes: it is not rotated.
    client._refresh_access_token()
    client._refresh_access_token()

    bad = CoditectClient(base_url=base_url)
    with pytest.raises(requests.HTTPError) as caught:
        bad.login("dev@example.com", "wrong-password")
    assert caught.value.response.status_code == 401
    assert caught.value.response.json() == {
        "error": "Unauthorized",
        "detail": "No active account found with the given credentials.",
    }


def _platform_flow(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        login = http.post("/v1/auth/login", json={"email": "dev@example.com", "password": "SecurePass123!"})
        assert login.status_code == 200, login.text
        tokens = login.json()["tokens"]
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == ACCESS_TTL
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        assert http.get("/v1/users/me", headers=bearer).json()["auth"]["type"] == "jwt"
        created = http.post("/v1/api-keys", json={"name": "CI", "scopes": ["read", "write"]}, headers=bearer)
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert key.startswith("coexai_live_")

        # The guide's quick start: "Test your API key".
        me = http.get("/v1/users/me", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200, me.text
        assert me.json()["auth"] == {
            "type": "api_key",
            "scopes": ["read", "write"],
            "livemode": True,
            "api_key_id": created.json()["id"],
        }
        assert me.headers["X-Request-ID"].startswith("req_")

        refreshed = http.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["tokens"]["refresh_token"] == tokens["refresh_token"]


def _ci_validate(base_url: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODITECT_LICENSE_KEY": key, "CODITECT_API_URL": base_url}
    return subprocess.run(["bash", "-c", VALIDATE_LICENSE_SH], env=env, capture_output=True, text=True, timeout=30)


def _issue(settings: Settings, organization_id: str, tier: str, seats: int) -> dict[str, object]:
    """The operator issues a license from a shell (customers cannot issue live licenses)."""
    env = {**os.environ, "ENVIRONMENT": "test", "DATABASE_URL": settings.database.url}
    args = ["licenses", "issue", "--organization", organization_id, "--tier", tier, "--seats", str(seats)]
    done = subprocess.run(
        [sys.executable, "-m", "backplane.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    issued: dict[str, object] = json.loads(done.stdout)
    return issued


def _license_flow(base_url: str, settings: Settings) -> None:
    client = CoditectClient(base_url=base_url)
    client.login("dev@example.com", "SecurePass123!")
    organization_id = client._request("GET", "/v1/users/me")["organization"]["id"]
    [free] = client.list_licenses(tier="free")["licenses"]  # the free plan's license, from registration
    assert (free["seats"], free["livemode"]) == (1, True)
    created = _issue(settings, organization_id, "pro", 2)
    key, license_id = str(created["key_string"]), str(created["id"])

    licenses = client.list_licenses(is_active=True, tier="pro")
    assert licenses["count"] == 1 and licenses["licenses"][0]["key_string"] == key
    assert client.list_licenses(tier="enterprise")["count"] == 0
    assert client.get_license(license_id)["seats"] == 2

    # The signed license file, downloaded by the client and checked offline by the CLI.
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_license(license_id, os.path.join(folder, "license.json"))
        checked = subprocess.run(
            [sys.executable, "-m", "backplane.cli", "license", "verify", path, "--url", base_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stderr
        assert key in checked.stdout

    # Pattern 3: the CI script with curl and jq.
    ok = _ci_validate(base_url, key)
    assert ok.returncode == 0 and ok.stdout.strip() == "License valid. Tier: pro", ok.stdout + ok.stderr
    bad = _ci_validate(base_url, "PROD-2025-ABCD-1234")
    assert bad.returncode == 1
    assert bad.stdout.startswith("License validation failed: This is not a valid license key")

    # Pattern 1: validate, then acquire with this machine's hardware id; again gives the same seat.
    session = initialize_license(client, key)
    assert session["seats_remaining"] == 1
    assert initialize_license(client, key)["session_id"] == session["session_id"]
    beat = client.heartbeat(session["session_id"])
    assert beat["session_id"] == session["session_id"] and beat["is_active"] is True

    # The session manager takes the last seat; a third machine is told there are none.
    manager = LicenseSessionManager(client)
    managed = manager.acquire(key, "build-agent-7")
    assert managed["seats_remaining"] == 0
    with pytest.raises(requests.HTTPError) as caught:
        client.acquire_seat(key, "third-machine")
    assert caught.value.response.status_code == 409
    assert "seats" in caught.value.response.json()["detail"].lower()
    manager.release()
    assert manager.session_id is None

    released = client.release_seat(session["session_id"])
    assert released == {"message": "Seat released.", "seats_remaining": 2}
    with pytest.raises(requests.HTTPError) as caught:
        client.heartbeat(session["session_id"])
    assert caught.value.response.status_code == 404

    full = _issue(settings, organization_id, "pro", 1)
    client.acquire_seat(str(full["key_string"]), "someone-else")
    assert get_hardware_id() != "someone-else"
    with pytest.raises(LicenseError, match="No seats available"):
        initialize_license(client, str(full["key_string"]))


async def _concurrent_acquires(base_url: str) -> None:
    """200 machines at once against a 5-seat license on the real server: exactly 5 get a seat."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        login = await http.post("/api/v1/auth/token/", json={"email": "dev@example.com", "password": "SecurePass123!"})
        jwt = {"Authorization": f"Bearer {login.json()['access']}"}
        # An API key, not the 2-second access token this server issues: 200 requests may outlast it. A
        # test-mode key, as a CI pipeline would use, issues itself a 5-seat test license.
        body = {"name": "burst", "mode": "test", "scopes": ["read", "write", "admin"]}
        key = await http.post("/v1/api-keys", json=body, headers=jwt)
        bearer = {"Authorization": f"Bearer {key.json()['key']}"}
        created = await http.post("/api/v1/licenses/", json={"tier": "pro", "seats": 5}, headers=bearer)
        assert created.status_code == 201, created.text
        key = created.json()["key_string"]
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/licenses/acquire/", json={"license_key": key, "hardware_id": f"m{i}"}, headers=bearer
                )
                for i in range(200)
            )
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 5 and statuses.count(409) == 195, sorted(set(statuses))


async def test_guides_clients_against_real_processes(server: str, mailbox: Mailbox, settings: Settings) -> None:
    await asyncio.to_thread(_licensing_guide_flow, server, mailbox)
    await asyncio.to_thread(_platform_flow, server)
    await asyncio.to_thread(_license_flow, server, settings)
    await _concurrent_acquires(server)
