"""The licensing guide's Python client and session manager, written out as the guide shows them.

The method bodies are the guide's (requests, sync); only type annotations were added.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests


class CoditectClient:
    """CODITECT API Client for Python applications."""

    def __init__(self, base_url: str = "https://api.coditect.ai"):
        self.base_url = base_url
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.session = requests.Session()

    def _headers(self) -> dict[str, str]:
        """Build request headers with authentication."""
        headers = {"Content-Type": "application/json"}
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        return headers

    def _request(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        """Make an authenticated request with automatic token refresh."""
        url = f"{self.base_url}{endpoint}"
        response = self.session.request(method, url, headers=self._headers(), **kwargs)

        # Handle token expiration
        if response.status_code == 401 and self.refresh_token:
            self._refresh_access_token()
            response = self.session.request(method, url, headers=self._headers(), **kwargs)

        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Authenticate and store tokens."""
        response = self.session.post(
            f"{self.base_url}/api/v1/auth/token/",
            headers={"Content-Type": "application/json"},
            json={"email": email, "password": password},
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()

        self.access_token = data["access"]
        self.refresh_token = data["refresh"]
        return data

    def _refresh_access_token(self) -> None:
        """Refresh the access token using refresh token."""
        response = self.session.post(
            f"{self.base_url}/api/v1/auth/token/refresh/",
            headers={"Content-Type": "application/json"},
            json={"refresh": self.refresh_token},
        )
        response.raise_for_status()
        self.access_token = response.json()["access"]

    def register(self, email: str, password: str, full_name: str, company_name: str) -> dict[str, Any]:
        """Register a new user account."""
        return self._request(
            "POST",
            "/api/v1/auth/register/",
            json={"email": email, "password": password, "full_name": full_name, "company_name": company_name},
        )

    # License Management

    def list_licenses(self, is_active: bool | None = None, tier: str | None = None) -> dict[str, Any]:
        """List all licenses for the organization."""
        params = {}
        if is_active is not None:
            params["is_active"] = str(is_active).lower()
        if tier:
            params["tier"] = tier
        return self._request("GET", "/api/v1/licenses/", params=params)

    def get_license(self, license_id: str) -> dict[str, Any]:
        """Get detailed information about a specific license."""
        return self._request("GET", f"/api/v1/licenses/{license_id}/")

    def validate_license(self, license_key: str) -> dict[str, Any]:
        """Validate a license key (public endpoint)."""
        response = self.session.post(
            f"{self.base_url}/api/v1/licenses/validate/",
            headers={"Content-Type": "application/json"},
            json={"key_string": license_key},
        )
        result: dict[str, Any] = response.json()
        return result

    def download_license(self, license_id: str, output_path: str) -> str:
        """Download a signed license file."""
        response = self.session.get(f"{self.base_url}/api/v1/licenses/{license_id}/download/", headers=self._headers())
        response.raise_for_status()

        with open(output_path, "w") as f:
            f.write(response.text)
        return output_path

    # License Seat Management

    def acquire_seat(self, license_key: str, hardware_id: str, client_version: str = "1.0.0") -> dict[str, Any]:
        """Acquire a license seat for this machine."""
        return self._request(
            "POST",
            "/api/v1/licenses/acquire/",
            json={
                "license_key": license_key,
                "hardware_id": hardware_id,
                "ip_address": self._get_ip_address(),
                "client_version": client_version,
            },
        )

    def heartbeat(self, session_id: str) -> dict[str, Any]:
        """Send heartbeat to keep session alive."""
        return self._request("PATCH", f"/api/v1/licenses/sessions/{session_id}/heartbeat/")

    def release_seat(self, session_id: str) -> dict[str, Any]:
        """Release license seat when done."""
        return self._request("DELETE", f"/api/v1/licenses/sessions/{session_id}/")

    def _get_ip_address(self) -> str:
        """Get local IP address."""
        import socket

        return socket.gethostbyname(socket.gethostname())


class LicenseSessionManager:
    """Manages license session with automatic heartbeat."""

    def __init__(self, client: CoditectClient, on_session_lost: Callable[[Exception], None] | None = None):
        self.client = client
        self.session_id: str | None = None
        self._heartbeat_thread: threading.Thread | None = None
        self._stop_heartbeat = threading.Event()
        self._on_session_lost = on_session_lost
        self._retry_count = 0
        self._max_retries = 3

    def acquire(self, license_key: str, hardware_id: str) -> dict[str, Any]:
        """Acquire a license seat and start heartbeat."""
        session = self.client.acquire_seat(license_key, hardware_id)
        self.session_id = session["session_id"]
        self._start_heartbeat()
        return session

    def release(self) -> None:
        """Release license seat and stop heartbeat."""
        self._stop_heartbeat.set()
        if self._heartbeat_thread:
            self._heartbeat_thread.join(timeout=5)

        if self.session_id:
            try:  # noqa: SIM105 (the guide's code)
                self.client.release_seat(self.session_id)
            except Exception:
                pass  # Best effort release
            self.session_id = None

    def _start_heartbeat(self) -> None:
        """Start background heartbeat thread."""
        self._stop_heartbeat.clear()
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, daemon=True)
        self._heartbeat_thread.start()

    def _heartbeat_loop(self) -> None:
        """Background heartbeat loop with exponential backoff."""
        while not self._stop_heartbeat.wait(180):  # 3 minutes
            try:
                assert self.session_id is not None
                self.client.heartbeat(self.session_id)
                self._retry_count = 0  # Reset on success
            except Exception as e:
                self._retry_count += 1
                if self._retry_count >= self._max_retries:
                    self.session_id = None
                    if self._on_session_lost:
                        self._on_session_lost(e)
                    break
                # Exponential backoff: 10s, 20s, 40s
                time.sleep(10 * (2 ** (self._retry_count - 1)))


class LicenseError(Exception):
    pass


def get_hardware_id() -> str:
    """Generate a unique hardware identifier."""
    import hashlib
    import platform
    import uuid

    components = [platform.node(), platform.machine(), str(uuid.getnode())]
    combined = "-".join(components)
    return hashlib.sha256(combined.encode()).hexdigest()[:32]


def initialize_license(client: CoditectClient, license_key: str) -> dict[str, Any]:
    """Pattern 1: initialize license on application startup."""
    # 1. Validate license first (no auth required)
    validation = client.validate_license(license_key)
    if not validation["valid"]:
        raise LicenseError(validation.get("reason", "Invalid license"))

    # 2. Try to acquire a seat
    hardware_id = get_hardware_id()
    try:
        session = client.acquire_seat(license_key, hardware_id)
        return session
    except requests.HTTPError as e:
        if e.response.status_code == 409:
            raise LicenseError("No seats available") from e
        raise


# Pattern 3 of the guide: CI/CD license validation, as a shell script with curl and jq.
VALIDATE_LICENSE_SH = r"""#!/bin/bash
LICENSE_KEY="${CODITECT_LICENSE_KEY:?License key required}"
API_URL="${CODITECT_API_URL:-https://api.coditect.ai}"

response=$(curl -s -X POST "$API_URL/api/v1/licenses/validate/" \
-H "Content-Type: application/json" \
-d "{\"key_string\": \"$LICENSE_KEY\"}")

valid=$(echo "$response" | jq -r '.valid')

if [ "$valid" != "true" ]; then
reason=$(echo "$response" | jq -r '.reason // "Unknown error"')
echo "License validation failed: $reason"
exit 1
fi

echo "License valid. Tier: $(echo "$response" | jq -r '.license.tier')"
exit 0
"""
