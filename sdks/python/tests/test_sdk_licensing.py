"""`LicensingClient` and `LicenseSessionManager` against a real `backplane serve`: background heartbeats,
release on exit, a lost session, and a program holding a seat killed with SIGKILL and started again,
which continues the same session instead of taking a second seat (examples/licensing_guide.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coexai import ConflictError, LicenseSessionManager, LicensingClient, NotFoundError
from conftest import EXAMPLES, PASSWORD, Account, sign_up

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(base_url: str, account: Account) -> Iterator[LicensingClient]:
    licensing = LicensingClient(api_key=account.api_key, base_url=base_url)
    yield licensing
    licensing.close()


@pytest.fixture
def free_license(client: LicensingClient) -> dict[str, Any]:
    """The free plan's license every new organization gets: one seat."""
    [license_] = client.list_licenses(tier="free")["licenses"]
    assert license_["seats"] == 1
    return dict(license_)


def _until(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def _live(client: LicensingClient, license_id: str) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = client.live_sessions(license_id)["sessions"]
    return sessions


def test_the_manager_heartbeats_in_the_background_and_releases_on_leaving_the_block(
    client: LicensingClient, free_license: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "session.json"
    with LicenseSessionManager(client, session_file=state, heartbeat_interval=0.2) as manager:
        session = manager.acquire(free_license["key_string"], "desk-1", client_version="1.0.0")
        assert session.seats_remaining == 0 and session.is_active and not manager.resumed
        assert json.loads(state.read_text())["session_id"] == session.session_id
        assert oct(state.stat().st_mode & 0o777) == "0o600"
        _until(lambda: _live(client, free_license["id"])[0]["heartbeats"] >= 3)
        with pytest.raises(ConflictError) as full:  # the one seat is held
            client.acquire_seat(free_license["key_string"], "desk-2")
        assert "seats" in full.value.message.lower()
    assert _live(client, free_license["id"]) == []
    assert not state.exists() and manager.session_id is None


def test_a_stored_session_that_is_gone_is_replaced_by_acquiring_again(
    client: LicensingClient, free_license: dict[str, Any], tmp_path: Path
) -> None:
    old = client.acquire_seat(free_license["key_string"], "desk-1")
    client.release_seat(old.session_id)
    state = tmp_path / "session.json"
    state.write_text(
        json.dumps({"session_id": old.session_id, "license_key": free_license["key_string"], "hardware_id": "desk-1"})
    )
    manager = LicenseSessionManager(client, session_file=state, heartbeat_interval=60, release_at_exit=False)
    session = manager.acquire(free_license["key_string"], "desk-1")
    assert session.session_id != old.session_id and not manager.resumed
    assert [s["session_id"] for s in _live(client, free_license["id"])] == [session.session_id]
    manager.release()
    with pytest.raises(NotFoundError):
        client.heartbeat(session.session_id)


def test_a_revoked_session_is_taken_again_and_a_lost_seat_calls_on_session_lost(
    client: LicensingClient, free_license: dict[str, Any]
) -> None:
    lost: list[Exception] = []
    called = threading.Event()

    def on_lost(error: Exception) -> None:
        lost.append(error)
        called.set()

    manager = LicenseSessionManager(client, on_lost, heartbeat_interval=0.2, backoff=0.05, release_at_exit=False)
    first = manager.acquire(free_license["key_string"], "desk-1")
    revoke = f"/api/v1/licenses/{free_license['id']}/sessions/{first.session_id}/"
    assert client._http.delete(revoke, headers={"Authorization": f"Bearer {client._transport.api_key}"}).is_success
    # The next heartbeat is answered 404: the manager takes the seat again as the same machine.
    _until(lambda: manager.session_id not in (None, first.session_id))
    assert [s["hardware_id"] for s in _live(client, free_license["id"])] == ["desk-1"]

    # Revoked again, and another machine takes the only seat meanwhile: after three failed attempts the
    # manager gives up and says so.
    second = str(manager.session_id)
    revoke = f"/api/v1/licenses/{free_license['id']}/sessions/{second}/"
    with manager._lock:  # hold the heartbeat back until the other machine has the seat
        assert client._http.delete(revoke, headers={"Authorization": f"Bearer {client._transport.api_key}"}).is_success
        client.acquire_seat(free_license["key_string"], "desk-2")
    assert called.wait(15)
    assert isinstance(lost[0], ConflictError) and manager.session_id is None
    assert [s["hardware_id"] for s in _live(client, free_license["id"])] == ["desk-2"]
    manager.release()


def test_the_client_signs_in_with_the_licensing_guides_jwt_pair(base_url: str) -> None:
    account = sign_up(base_url)
    client = LicensingClient(base_url=base_url + "/v1")  # the guide's base URL form works too
    client.login(account.email, PASSWORD)
    [license_] = client.list_licenses(is_active=True)["licenses"]
    assert client.get_license(license_["id"])["key_string"] == license_["key_string"]
    assert client.validate_license(license_["key_string"])["valid"] is True
    # An access token that no longer works (expired, revoked) is refreshed once with the refresh token.
    client._transport.api_key = "expired-or-revoked"
    assert client.get_license(license_["id"])["id"] == license_["id"]
    assert client._transport.api_key != "expired-or-revoked"
    client.close()


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    program = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "licensing_guide.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert program.stdout is not None
    line = program.stdout.readline()
    if not line:
        _, errors = program.communicate(timeout=10)
        raise AssertionError(f"the program printed nothing: {errors}")
    return program, json.loads(line)


def test_a_program_killed_while_holding_a_seat_continues_the_same_session_when_started_again(
    base_url: str, account: Account, client: LicensingClient, free_license: dict[str, Any], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "COEXAI_API_KEY": account.api_key,
        "COEXAI_BASE_URL": base_url,
        "LICENSE_KEY": free_license["key_string"],
        "SESSION_FILE": str(tmp_path / "state" / "session.json"),
        "STOP_FILE": str(tmp_path / "stop"),
        "HEARTBEAT_SECONDS": "0.2",
        "HARDWARE_ID": "workstation-7",
    }
    first, started = _start(env)
    assert started["resumed"] is False
    _until(lambda: _live(client, free_license["id"])[0]["heartbeats"] >= 2)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)  # reaped, its pipes closed
    [held] = _live(client, free_license["id"])  # the lease outlives the process (no release ran)
    assert held["session_id"] == started["session_id"]
    beats = held["heartbeats"]

    second, restarted = _start(env)
    try:
        assert restarted == {"session_id": started["session_id"], "resumed": True}
        _until(lambda: _live(client, free_license["id"])[0]["heartbeats"] >= beats + 3)
        [still] = _live(client, free_license["id"])  # one seat, the same session, heartbeated again
        assert still["session_id"] == started["session_id"]
        (tmp_path / "stop").touch()
        _, errors = second.communicate(timeout=20)
        assert second.returncode == 0, errors
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert _live(client, free_license["id"]) == []  # released at exit
    assert not (tmp_path / "state" / "session.json").exists()
    with httpx.Client(base_url=base_url) as http:
        validated = http.post("/api/v1/licenses/validate/", json={"key_string": free_license["key_string"]})
    assert validated.json()["valid"] is True
