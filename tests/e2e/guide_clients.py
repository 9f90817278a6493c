"""The licensing guide's Python client, written out as the guide shows it (requests, sync).

Only what the foundation serves is exercised here; the method bodies are the guide's.
"""

from __future__ import annotations

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
