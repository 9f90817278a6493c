"""What both benchmarks do through the API before measuring (they run as scripts: `python bench/x.py`)."""

from __future__ import annotations

import secrets
import sys
from typing import Any

import httpx


async def call_json(client: httpx.AsyncClient, method: str, path: str, expect: int, body: Any = None) -> Any:
    """The JSON answer of one call, or exit with what the server said."""
    response = await client.request(method, path, json=body)
    if response.status_code != expect:
        sys.exit(f"bench: {method} {path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


async def sign_up(client: httpx.AsyncClient, label: str, tag: str) -> dict[str, str]:
    """Register a fresh user and organization; the client then sends its access token. The token pair."""
    email = f"bench-{tag}-{secrets.token_hex(4)}@example.com"
    password = f"Bench-{secrets.token_urlsafe(12)}-9aZ!"
    register = {"email": email, "password": password, "full_name": label, "company_name": f"Bench {tag}"}
    await call_json(client, "POST", "/api/v1/auth/register/", 201, register)
    tokens: dict[str, str] = await call_json(
        client, "POST", "/api/v1/auth/token/", 200, {"email": email, "password": password}
    )
    client.headers["Authorization"] = f"Bearer {tokens['access']}"
    return tokens
