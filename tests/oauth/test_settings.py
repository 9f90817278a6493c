"""OAuth settings: read from the flat environment names, with the frontend URLs checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backplane.core.config import AuthSettings, OAuthSettings, Settings
from backplane.oauth.providers import configured


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_environment_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GOOGLE_CLIENT_ID": "g-id",
        "GOOGLE_CLIENT_SECRET": "g-secret",
        "MICROSOFT_CLIENT_ID": "m-id",
        "MICROSOFT_CLIENT_SECRET": "m-secret",
        "MICROSOFT_TENANT": "contoso.onmicrosoft.com",
        "GITHUB_CLIENT_ID": "gh-id",
        "GITHUB_CLIENT_SECRET": "gh-secret",
        "OAUTH_REDIRECT_ALLOWLIST": "https://app.example.com/cb, http://localhost:3000/cb",
        "OAUTH_FRONTEND_CALLBACK_URL": "https://app.example.com/cb",
        "OAUTH_TOKEN_DELIVERY": "cookie",
        "GITHUB_OAUTH_BASE_URL": "http://127.0.0.1:9999/",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    oauth = OAuthSettings()

    assert oauth.redirect_allowlist == {"https://app.example.com/cb", "http://localhost:3000/cb"}
    assert oauth.oauth_token_delivery == "cookie"
    google, microsoft, github = (configured(oauth, name) for name in ("google", "microsoft", "github"))
    assert google is not None and google.endpoints.token == "https://oauth2.googleapis.com/token"
    assert google.client_secret == "g-secret"
    assert microsoft is not None
    assert microsoft.endpoints.authorize == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    )
    assert github is not None and github.endpoints.authorize == "http://127.0.0.1:9999/login/oauth/authorize"
    assert github.endpoints.userinfo == "http://127.0.0.1:9999"


def test_a_provider_needs_both_its_id_and_secret() -> None:
    assert configured(OAuthSettings(google_client_id="g-id"), "google") is None
    assert configured(OAuthSettings(google_client_secret="s"), "google") is None
    assert configured(OAuthSettings(), "github") is None
    assert configured(OAuthSettings(google_client_id="g", google_client_secret="s"), "facebook") is None


def test_the_frontend_callback_defaults_to_the_public_base_url(tmp_path: Path) -> None:
    settings = Settings(public_base_url="https://api.example.com/", auth=AuthSettings(secrets_dir=tmp_path))
    assert settings.oauth_frontend_callback_url == "https://api.example.com/auth/callback"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("oauth_redirect_allowlist", "https://ok.example.com/cb,ftp://files.example.com/"),
        ("oauth_redirect_allowlist", "/relative/cb"),
        ("oauth_redirect_allowlist", "https://app.example.com/cb#tokens"),
        ("oauth_frontend_callback_url", "app.example.com/cb"),
        ("oauth_token_delivery", "query"),
        ("microsoft_tenant", "../evil"),
        ("google_oauth_base_url", "javascript:alert(1)"),
    ],
)
def test_malformed_oauth_settings_are_refused_at_start_up(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        OAuthSettings(**{field: value})
