"""The licensing surface (`/api/v1/`): a client for licenses and seats, and `LicenseSessionManager`, which
holds one seat for a desktop application the way the licensing guide describes, and survives a crash.

The manager:
- acquires a seat (`POST licenses/acquire/`) and heartbeats it from a daemon thread every
  `heartbeat_interval` seconds (the guide: every 3 minutes against a 6-minute lease);
- on a failed heartbeat tries again after `backoff` seconds, doubling (the guide's 10 s, 20 s, ...), and
  after `max_retries` failures in a row (3) gives the seat up and calls `on_session_lost(error)`; a
  heartbeat answered 404 (the lease expired or an admin revoked it) acquires again at once with the
  same hardware id instead (a 409 then, the seat taken meanwhile, counts as a failure);
- writes the session id to `session_file` (0600, replaced atomically), so an application restarted after
  a crash heartbeats its stored session and keeps its seat; if that session is gone (404) it acquires
  again with the same `hardware_id`, which the service answers with that machine's live session if it
  still has one: a restart never takes a second seat;
- releases the seat on `release()`, on leaving a `with` block, and at interpreter exit (`atexit`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from coexai._client import DEFAULT_TIMEOUT, _base_url
from coexai._http import Operation, RetryPolicy, SyncTransport
from coexai._operations import call, call_json
from coexai.errors import AuthenticationError, CoExAIError, NotFoundError
from coexai.models import LicenseSession

T = TypeVar("T")
log = logging.getLogger("coexai.licensing")


def get_hardware_id() -> str:
    """A stable id for this machine: hostname, CPU type and MAC address, hashed (the guide's recipe)."""
    combined = "-".join([platform.node(), platform.machine(), str(uuid.getnode())])
    return hashlib.sha256(combined.encode()).hexdigest()[:32]


class LicensingClient:
    """Licenses and seats. Authenticates with an API key, or with `login()` (a JWT pair, refreshed on 401)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = _base_url(base_url)
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._transport = SyncTransport(
            self._http, api_key or os.environ.get("COEXAI_API_KEY"), RetryPolicy(max_retries=max_retries)
        )
        self._refresh: str | None = None
        self._lock = threading.Lock()

    def _run(self, operation: Callable[[], Operation[T]]) -> T:
        try:
            return self._transport.run(operation())
        except AuthenticationError:
            if self._refresh is None:
                raise
            self.refresh_access_token()
            return self._transport.run(operation())

    def login(self, email: str, password: str) -> dict[str, str]:
        tokens: dict[str, str] = self._transport.run(
            call_json("POST", "/api/v1/auth/token/", json={"email": email, "password": password}, authenticated=False)
        )
        self._transport.api_key, self._refresh = tokens["access"], tokens["refresh"]
        return tokens

    def refresh_access_token(self) -> None:
        with self._lock:
            body = {"refresh": self._refresh}
            access = self._transport.run(
                call_json("POST", "/api/v1/auth/token/refresh/", json=body, authenticated=False)
            )
            self._transport.api_key = access["access"]

    def validate_license(self, license_key: str) -> dict[str, Any]:
        """Public: `{valid, code, reason?, license?}`."""
        body = {"key_string": license_key}
        result: dict[str, Any] = self._run(lambda: call_json("POST", "/api/v1/licenses/validate/", json=body))
        return result

    def list_licenses(self, *, is_active: bool | None = None, tier: str | None = None) -> dict[str, Any]:
        params: dict[str, str] = {}
        if is_active is not None:
            params["is_active"] = str(is_active).lower()
        if tier:
            params["tier"] = tier
        result: dict[str, Any] = self._run(lambda: call_json("GET", "/api/v1/licenses/", params=params))
        return result

    def get_license(self, license_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._run(lambda: call_json("GET", f"/api/v1/licenses/{license_id}/"))
        return result

    def live_sessions(self, license_id: str) -> dict[str, Any]:
        """`{count, seats, sessions}`: the license's leased seats now (admins)."""
        result: dict[str, Any] = self._run(lambda: call_json("GET", f"/api/v1/licenses/{license_id}/sessions/"))
        return result

    def acquire_seat(
        self, license_key: str, hardware_id: str, client_version: str | None = None, ip_address: str | None = None
    ) -> LicenseSession:
        body = {
            "license_key": license_key,
            "hardware_id": hardware_id,
            "ip_address": ip_address,
            "client_version": client_version,
        }
        return self._run(lambda: call("POST", "/api/v1/licenses/acquire/", LicenseSession, json=body))

    def heartbeat(self, session_id: str) -> LicenseSession:
        path = f"/api/v1/licenses/sessions/{session_id}/heartbeat/"
        return self._run(lambda: call("PATCH", path, LicenseSession))

    def release_seat(self, session_id: str) -> dict[str, Any]:
        path = f"/api/v1/licenses/sessions/{session_id}/"
        result: dict[str, Any] = self._run(lambda: call_json("DELETE", path))
        return result

    def close(self) -> None:
        self._http.close()


def _read_state(path: Path) -> dict[str, str] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_state(path: Path, state: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".coexai-session-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as out:
            json.dump(dict(state), out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class LicenseSessionManager:
    """One seat held for this application; see the module's docstring."""

    def __init__(
        self,
        client: LicensingClient,
        on_session_lost: Callable[[Exception], None] | None = None,
        *,
        session_file: str | os.PathLike[str] | None = None,
        heartbeat_interval: float = 180.0,
        backoff: float = 10.0,
        max_retries: int = 3,
        release_at_exit: bool = True,
    ) -> None:
        self.client = client
        self.session_id: str | None = None
        self.session: LicenseSession | None = None
        self.resumed = False  # whether acquire() continued a stored session
        self._on_session_lost = on_session_lost
        self._file = Path(session_file) if session_file is not None else None
        self._interval = heartbeat_interval
        self._backoff = backoff
        self._max_retries = max_retries
        self._release_at_exit = release_at_exit
        self._license_key: str | None = None
        self._hardware_id: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()

    def acquire(self, license_key: str, hardware_id: str, client_version: str | None = None) -> LicenseSession:
        """Take a seat (or continue the one stored in `session_file`) and start heartbeating it."""
        with self._lock:
            self._license_key, self._hardware_id = license_key, hardware_id
            session = self._resume(license_key, hardware_id)
            self.resumed = session is not None
            if session is None:
                session = self.client.acquire_seat(license_key, hardware_id, client_version)
            self._hold(session)
        self._start()
        if self._release_at_exit:
            atexit.register(self.release)
        return session

    def _resume(self, license_key: str, hardware_id: str) -> LicenseSession | None:
        state = _read_state(self._file) if self._file else None
        if not state or state.get("license_key") != license_key or state.get("hardware_id") != hardware_id:
            return None
        try:
            return self.client.heartbeat(state["session_id"])
        except NotFoundError:
            return None  # expired or released meanwhile: acquire again (the same hardware id)

    def _hold(self, session: LicenseSession) -> None:
        self.session, self.session_id = session, session.session_id
        if self._file and self._license_key and self._hardware_id:
            state = {"session_id": session.session_id, "license_key": self._license_key}
            _write_state(self._file, {**state, "hardware_id": self._hardware_id})

    def _forget(self) -> None:
        self.session, self.session_id = None, None
        if self._file:
            with contextlib.suppress(FileNotFoundError):
                self._file.unlink()

    def _start(self) -> None:
        self._stop.clear()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._heartbeat_loop, name="coexai-license-heartbeat", daemon=True)
            self._thread.start()

    def release(self) -> None:
        """Stop heartbeating and give the seat back (best effort); forget the stored session."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            if self.session_id:
                try:
                    self.client.release_seat(self.session_id)
                except CoExAIError as exc:  # gone already, or the service unreachable: the lease expires
                    log.warning("releasing license session %s failed: %s", self.session_id, exc)
            self._forget()
        atexit.unregister(self.release)

    def __enter__(self) -> LicenseSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _beat(self) -> None:
        with self._lock:
            if self._stop.is_set() or self.session_id is None:
                return
            try:
                self._hold(self.client.heartbeat(self.session_id))
            except NotFoundError:  # the lease is gone: take the seat again, as this machine
                assert self._license_key is not None and self._hardware_id is not None
                self._hold(self.client.acquire_seat(self._license_key, self._hardware_id))

    def _heartbeat_loop(self) -> None:
        failures = 0
        pause = self._interval
        while not self._stop.wait(pause):
            try:
                self._beat()
            except Exception as exc:  # any failure counts, as in the guide's loop
                failures += 1
                log.warning("license heartbeat failed (%d/%d): %s", failures, self._max_retries, exc)
                if failures >= self._max_retries:
                    with self._lock:
                        self._forget()
                    if self._on_session_lost is not None:
                        self._on_session_lost(exc)
                    return
                pause = self._backoff * 2 ** (failures - 1)  # 10 s, 20 s, ...
                continue
            failures, pause = 0, self._interval


__all__ = ["LicenseSessionManager", "LicensingClient", "get_hardware_id"]
