"""Safe defaults: what production refuses to start with, and what every response carries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from pydantic import ValidationError

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.assertions import assert_not_found
from tests.fixtures.processes import backplane_processes, run_cli

STRONG_SECRET = "x" * 20 + "0123456789abcdefghijklmnop"
LOCAL_BILLING = (
    "BILLING_MODE=local must be set explicitly when ENVIRONMENT=production without STRIPE_SECRET_KEY "
    "(in local billing mode checkouts complete on this service, without payment)"
)


def _signing_key() -> str:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": STRONG_SECRET,
    "LICENSE_SIGNING_KEY": _signing_key(),
    "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "BILLING_MODE": "local",
}
VARIABLES = [
    "BILLING_MODE",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "DOCS_PUBLIC",
    "GOOGLE_OAUTH_BASE_URL",
    "MICROSOFT_OAUTH_BASE_URL",
    "GITHUB_OAUTH_BASE_URL",
    "SMTP_TLS",
    "SMTP_STARTTLS",
]


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A complete production configuration in the environment; tests take away or add to it."""
    monkeypatch.chdir(tmp_path)  # no stray .env or .secrets/
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return dict(PRODUCTION)


def test_a_complete_production_configuration_starts(production: dict[str, str]) -> None:
    settings = Settings()
    assert settings.stripe.local_mode and not settings.docs_public_enabled


def test_production_needs_local_billing_said_explicitly(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BILLING_MODE")
    with pytest.raises(ValidationError, match=LOCAL_BILLING.replace("(", r"\(").replace(")", r"\)")):
        Settings()
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_abc")
    assert not Settings().stripe.local_mode  # Stripe mode from the key needs nothing more


def test_the_billing_mode_follows_the_stripe_key_unless_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert Settings().stripe.local_mode
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_abc")
    assert not Settings().stripe.local_mode
    monkeypatch.setenv("BILLING_MODE", "local")
    assert Settings().stripe.local_mode  # said explicitly: the key is not used
    monkeypatch.setenv("BILLING_MODE", "stripe")
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    with pytest.raises(ValidationError, match="BILLING_MODE=stripe needs STRIPE_SECRET_KEY"):
        Settings()


@pytest.mark.parametrize(
    "name", ["STRIPE_API_BASE", "GOOGLE_OAUTH_BASE_URL", "MICROSOFT_OAUTH_BASE_URL", "GITHUB_OAUTH_BASE_URL"]
)
def test_production_hooks_to_other_hosts_must_be_https(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "http://stand-in.internal:8080")
    with pytest.raises(
        ValidationError,
        match=f"{name} must be an https URL when ENVIRONMENT=production, not 'http://stand-in.internal:8080'",
    ):
        Settings()
    monkeypatch.setenv(name, "https://stand-in.internal:8443")
    Settings()
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv(name, "http://127.0.0.1:8080")  # the tests' stand-ins
    Settings()


def test_backplane_serve_names_each_production_problem_on_its_own_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(PRODUCTION)
    del env["BILLING_MODE"]
    env.update(STRIPE_API_BASE="http://stripe.internal", GITHUB_OAUTH_BASE_URL="http://github.internal")
    result = run_cli("serve", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert result.stderr.splitlines()[-4:] == [
        "backplane: invalid configuration:",
        f"  {LOCAL_BILLING}",
        "  STRIPE_API_BASE must be an https URL when ENVIRONMENT=production, not 'http://stripe.internal'",
        "  GITHUB_OAUTH_BASE_URL must be an https URL when ENVIRONMENT=production, not 'http://github.internal'",
    ]


# API documentation: DOCS_PUBLIC.


def test_docs_are_public_by_default_outside_production_only(
    production: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not Settings().docs_public_enabled
    monkeypatch.setenv("DOCS_PUBLIC", "true")
    assert Settings().docs_public_enabled
    monkeypatch.delenv("DOCS_PUBLIC")
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings().docs_public_enabled


@pytest.fixture
async def app_with(settings: Settings) -> Any:
    class _Open:
        async def __call__(self, **update: Any) -> httpx.AsyncClient:
            application: FastAPI = create_app(settings.model_copy(update=update))
            self.lifespan = application.router.lifespan_context(application)
            await self.lifespan.__aenter__()
            self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver")
            return self.http

    opened = _Open()
    yield opened
    await opened.http.aclose()
    await opened.lifespan.__aexit__(None, None, None)


async def test_docs_answer_404_when_not_public(app_with: Any) -> None:
    http = await app_with(docs_public=False)
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert_not_found(await http.get(path))
    assert (await http.get("/api/v1/health/")).status_code == 200


async def test_docs_are_served_when_public(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 200


# Response headers.

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/api/v1/health/"),
        await client.get("/v1/nothing-here"),
        await client.post("/api/v1/auth/token/", content=b"{" * (2 * 1024 * 1024)),
        await client.get("/docs"),
    ]
    for response in responses:
        assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, response.url
        assert "strict-transport-security" not in response.headers  # PUBLIC_BASE_URL is http here


async def test_hsts_when_the_public_url_is_https(app_with: Any) -> None:
    http = await app_with(public_base_url="https://api.example.com")
    response = await http.get("/api/v1/health/")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    env = {
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_DIR": str(settings.storage_dir),
        "PUBLIC_BASE_URL": "https://api.example.com",
    }
    with backplane_processes(env, worker=False) as base_url:
        yield base_url


@pytest.mark.e2e
def test_backplane_serve_does_not_name_its_server(server: str) -> None:
    response = httpx.get(f"{server}/api/v1/health/")
    assert response.status_code == 200
    assert "server" not in response.headers
    assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS
    assert response.headers["strict-transport-security"] == "max-age=31536000"
