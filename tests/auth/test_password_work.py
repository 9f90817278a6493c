"""Password hashing runs off the event loop: a sign-in in progress never holds up other requests.

The hasher is swapped for one that holds each verification until the test lets it go, so the order
of events says where the work ran: on the event loop, nothing else could answer meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from backplane.core import security
from tests.fixtures.auth import Account, Api

GATE_SECONDS = 10  # only a guard so that a regression fails instead of hanging


class GatedHasher:
    """The real hasher, whose `verify` waits for `release` (in whatever thread it was called from) once
    the gate is closed; open at first, so that setting up accounts signs in as usual."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.events: list[str] = []

    def close(self) -> None:
        self.started.clear()
        self.release.clear()
        self.events.clear()

    def hash(self, password: str) -> str:
        result: str = self.real.hash(password)
        return result

    def verify(self, password: str, password_hash: str) -> bool:
        self.started.set()
        released = self.release.wait(GATE_SECONDS)
        self.events.append("verified" if released else "verification timed out")
        result: bool = self.real.verify(password, password_hash)
        return result


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> GatedHasher:
    gated = GatedHasher(security._password_hash)
    monkeypatch.setattr(security, "_password_hash", gated)
    return gated


async def _seat_session(client: httpx.AsyncClient, account: Account) -> str:
    assert account.api is not None
    free = await account.api.issue_license(account, seats=1)
    acquired = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": free["key_string"], "hardware_id": "machine-1"},
        headers=account.headers,
    )
    assert acquired.status_code == 200, acquired.text
    session_id: str = acquired.json()["session_id"]
    return session_id


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/v1/auth/login"])
async def test_a_seat_heartbeat_is_answered_while_a_sign_in_verifies_its_password(
    api: Api, client: httpx.AsyncClient, gate: GatedHasher, path: str
) -> None:
    account = await api.register("dev@example.com")
    session_id = await _seat_session(client, account)
    gate.close()

    sign_in = asyncio.create_task(client.post(path, json={"email": account.email, "password": account.password}))
    assert await asyncio.to_thread(gate.started.wait, GATE_SECONDS)
    heartbeat = await client.patch(f"/api/v1/licenses/sessions/{session_id}/heartbeat/", headers=account.headers)
    gate.events.append("heartbeat answered")
    gate.release.set()
    signed_in = await sign_in

    assert heartbeat.status_code == 200, heartbeat.text
    assert signed_in.status_code == 200, signed_in.text
    assert gate.events == ["heartbeat answered", "verified"]


async def test_a_wrong_password_is_verified_off_the_event_loop_too(
    api: Api, client: httpx.AsyncClient, gate: GatedHasher
) -> None:
    account = await api.register("dev@example.com")

    for email in (account.email, "nobody@example.com"):  # an unknown account verifies a dummy hash
        gate.close()
        wrong = {"email": email, "password": "Wrong-123"}
        sign_in = asyncio.create_task(client.post("/api/v1/auth/token/", json=wrong))
        assert await asyncio.to_thread(gate.started.wait, GATE_SECONDS)
        health = await client.get("/api/v1/health/")
        gate.events.append("health answered")
        gate.release.set()

        assert health.status_code == 200
        assert (await sign_in).status_code == 401
        assert gate.events == ["health answered", "verified"]
