"""An empty setting is an unset one (what a compose file's `VAR: ${VAR:-}` passes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic_settings import BaseSettings

from backplane.app import create_app
from backplane.core.config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.fixtures.auth import Api
from tests.fixtures.processes import backplane_processes

CHECKOUT = {
    "price_id": "price_pro_monthly",
    "seats": 2,
    "success_url": "https://app.example.com/ok",
    "cancel_url": "https://app.example.com/no",
}


def _env_names(section: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads, its sections' included."""
    prefix = str(section.model_config.get("env_prefix", ""))
    names = set()
    for name, field in section.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            names |= _env_names(field.annotation)
    return names


ALL_SETTINGS = sorted(_env_names(Settings))
# What the tests must point at their own PostgreSQL, Redis and scratch folders.
KEPT = {"DATABASE_URL", "REDIS_URL", "SECRETS_DIR", "STORAGE_DIR", "ENVIRONMENT"}


@pytest.fixture
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env; development keys go to tmp_path/.secrets
    env = dict.fromkeys(ALL_SETTINGS, "")
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield env


def test_the_settings_list_covers_every_section() -> None:
    assert {"STRIPE_SECRET_KEY", "SMTP_PORT", "S3_BUCKET", "DATABASE_POOL_SIZE", "LLM_BASE_URL"} <= set(ALL_SETTINGS)
    assert len(ALL_SETTINGS) > 70


def test_every_setting_set_empty_is_the_same_as_unset(
    monkeypatch: pytest.MonkeyPatch, empty_env: dict[str, str]
) -> None:
    unset = Settings()
    for name, value in empty_env.items():
        monkeypatch.setenv(name, value)
    empty = Settings()
    assert empty.model_dump() == unset.model_dump()
    assert empty.stripe.local_mode


async def test_the_service_runs_with_every_optional_setting_empty(
    monkeypatch: pytest.MonkeyPatch, empty_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    for name, value in empty_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("STORAGE_DIR", str(tmp_path / "files"))
    application = create_app(Settings())
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver") as http,
    ):
        assert (await http.get("/api/v1/health/ready/")).status_code == 200
        owner = await Api(http).register("empty-settings@example.com")
        checkout = await http.post("/api/v1/subscriptions/checkout/", json=CHECKOUT, headers=owner.headers)
        assert checkout.status_code == 200, checkout.text  # local billing mode, not Stripe with an empty key
        assert checkout.json()["session_id"].startswith("cs_local_")


def test_backplane_serve_runs_with_every_optional_setting_empty(
    empty_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    env = {
        **{name: value for name, value in empty_env.items() if name not in KEPT},
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRETS_DIR": str(tmp_path / ".secrets"),
        "STORAGE_DIR": str(tmp_path / "files"),
    }
    with backplane_processes(env, worker=False) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        assert http.get("/api/v1/health/ready/").status_code == 200
        registered = http.post(
            "/api/v1/auth/register/",
            json={
                "email": "empty-serve@example.com",
                "password": "SecurePass123!",
                "full_name": "Empty",
                "company_name": "Empty Co",
            },
        )
        assert registered.status_code == 201, registered.text
        tokens = http.post(
            "/api/v1/auth/token/", json={"email": "empty-serve@example.com", "password": "SecurePass123!"}
        ).json()
        checkout = http.post(
            "/api/v1/subscriptions/checkout/", json=CHECKOUT, headers={"Authorization": f"Bearer {tokens['access']}"}
        )
        assert checkout.status_code == 200, checkout.text
        assert checkout.json()["session_id"].startswith("cs_local_")
