from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from backplane.core.config import AuthSettings, Settings
from tests.fixtures.processes import run_cli


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env or .secrets/


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(auth=AuthSettings(secrets_dir=tmp_path / ".secrets"))
    second = Settings(auth=AuthSettings(secrets_dir=tmp_path / ".secrets"))
    assert len(first.secret_key) >= 48
    assert first.secret_key == second.secret_key
    stored = tmp_path / ".secrets" / "secret_key"
    assert stored.read_text() == first.secret_key
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_processes_starting_at_once_share_one_development_secret(tmp_path: Path) -> None:
    """An API and a worker (or parallel test processes) generating the secret at the same moment."""
    for attempt in range(10):  # a race: tried several times over
        secrets_dir = tmp_path / str(attempt)
        start = threading.Barrier(8)

        def first_start(directory: Path = secrets_dir, barrier: threading.Barrier = start) -> str:
            barrier.wait()
            return Settings(auth=AuthSettings(secrets_dir=directory)).secret_key

        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: first_start(), range(8)))
        assert keys == {(secrets_dir / "secret_key").read_text()}
        assert len(keys.pop()) >= 48


def test_production_requires_a_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is required when ENVIRONMENT=production"):
        Settings(environment="production")


SHORT_KEY = "SECRET_KEY is too short: it must be at least 32 bytes"


@pytest.mark.parametrize("weak", ["changeme", "short-key", "secret", "x" * 31])
@pytest.mark.parametrize("environment", ["production", "development", "test"])
def test_every_environment_refuses_a_secret_key_under_32_bytes(
    monkeypatch: pytest.MonkeyPatch, weak: str, environment: str
) -> None:
    monkeypatch.setenv("SECRET_KEY", weak)
    with pytest.raises(ValidationError, match=SHORT_KEY):
        Settings(environment=environment)


def test_a_secret_key_is_measured_in_bytes_not_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "é" * 16)  # 16 characters, 32 bytes in UTF-8
    assert Settings().secret_key == "é" * 16


def test_production_accepts_a_strong_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "x" * 20 + "0123456789abcdefghijklmnop")
    assert Settings(environment="production").secret_key.startswith("xxxx")


def test_environment_names_from_the_spec_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@db:5432/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/3")
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "60")
    monkeypatch.setenv("REFRESH_TOKEN_TTL_SECONDS", "120")
    monkeypatch.setenv("SMTP_HOST", "mail")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example.com")
    settings = Settings()
    assert settings.database.url == "postgresql+asyncpg://u@db:5432/x"
    assert settings.redis.url == "redis://cache:6379/3"
    assert settings.auth.access_token_ttl_seconds == 60
    assert settings.auth.refresh_token_ttl_seconds == 120
    assert settings.email.smtp_host == "mail"
    assert settings.public_base_url == "https://api.example.com"


def test_cli_refuses_to_start_in_production_without_a_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["ENVIRONMENT"] = "production"
    result = run_cli("serve", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY is required when ENVIRONMENT=production" in result.stderr


def test_cli_refuses_to_start_with_a_short_secret_key_in_development(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ENVIRONMENT"}
    env["SECRET_KEY"] = "too-short"
    result = run_cli("serve", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert SHORT_KEY in result.stderr
    assert "too-short" not in result.stderr  # the key itself is never printed


# License signing key (LICENSE_SIGNING_KEY).


def _pem(algorithm: str = "ed25519") -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = rsa.generate_private_key(65537, 2048) if algorithm == "rsa" else ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


@pytest.fixture(autouse=True)
def _production_signing_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A complete production configuration has a license signing key; tests about its absence remove it."""
    pem = _pem()
    monkeypatch.setenv("LICENSE_SIGNING_KEY", pem)
    monkeypatch.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())  # likewise
    monkeypatch.setenv("BILLING_MODE", "local")  # likewise (no STRIPE_SECRET_KEY here)
    return pem


STRONG_SECRET = "x" * 20 + "0123456789abcdefghijklmnop"


def test_production_requires_a_license_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LICENSE_SIGNING_KEY")
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    with pytest.raises(ValidationError, match="LICENSE_SIGNING_KEY is required when ENVIRONMENT=production"):
        Settings(environment="production")


def test_production_reads_the_signing_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, _production_signing_key: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    assert Settings(environment="production").license_signing_pem.strip() == _production_signing_key.strip()
    # A one-line variable (docker env files, CI secrets) with its newlines escaped works too.
    monkeypatch.setenv("LICENSE_SIGNING_KEY", _production_signing_key.strip().replace("\n", "\\n"))
    assert Settings(environment="production").license_signing_pem.strip() == _production_signing_key.strip()
    assert not (tmp_path / ".secrets").exists()  # nothing generated


def test_an_unreadable_signing_key_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENSE_SIGNING_KEY", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----")
    with pytest.raises(ValidationError, match="LICENSE_SIGNING_KEY is not a readable PEM private key") as raised:
        Settings()
    assert "not a key" not in str(raised.value)  # the value is never echoed
    monkeypatch.setenv("LICENSE_SIGNING_KEY", _pem("rsa"))
    with pytest.raises(ValidationError, match="LICENSE_SIGNING_KEY must be an Ed25519 key, not RSAPrivateKey"):
        Settings()


def test_development_generates_a_signing_key_once_and_keeps_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LICENSE_SIGNING_KEY")
    first = Settings(auth=AuthSettings(secrets_dir=tmp_path / ".secrets"))
    second = Settings(auth=AuthSettings(secrets_dir=tmp_path / ".secrets"))
    assert first.license_signing_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert first.license_signing_pem == second.license_signing_pem
    stored = tmp_path / ".secrets" / "license_signing_key.pem"
    assert stored.read_text() == first.license_signing_pem
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert sorted(p.name for p in stored.parent.iterdir()) == ["license_signing_key.pem", "secret_key"]


def test_a_damaged_development_signing_key_says_which_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LICENSE_SIGNING_KEY")
    stored = tmp_path / ".secrets" / "license_signing_key.pem"
    stored.parent.mkdir()
    stored.write_text("garbage")
    with pytest.raises(ValidationError, match="delete it to generate a new development key"):
        Settings(auth=AuthSettings(secrets_dir=tmp_path / ".secrets"))


def test_cli_refuses_to_start_in_production_without_a_signing_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LICENSE_SIGNING_KEY"}
    env.update(ENVIRONMENT="production", SECRET_KEY=STRONG_SECRET)
    result = run_cli("serve", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "LICENSE_SIGNING_KEY is required when ENVIRONMENT=production" in result.stderr


def test_s3_settings_are_read_from_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Settings().s3.enabled
    monkeypatch.setenv("S3_BUCKET", "acme-files")
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("S3_REGION", "eu-central-1")
    monkeypatch.setenv("S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.setenv("S3_PREFIX", "/backplane/files")
    s3 = Settings().s3
    assert s3.enabled
    assert (s3.bucket, s3.endpoint_url, s3.region, s3.prefix) == (
        "acme-files",
        "http://minio:9000",
        "eu-central-1",
        "backplane/files/",
    )
    assert s3.access_key_id is not None and s3.access_key_id.get_secret_value() == "AKIAEXAMPLE"
    assert s3.secret_access_key is not None and s3.secret_access_key.get_secret_value() == "example-secret"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_ENDPOINT_URL": "http://minio:9000"}, "S3_BUCKET is required when other S3_ settings are given"),
        ({"S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "AKIA"}, "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together"),
        (
            {"S3_BUCKET": "b", "UPLOAD_URL_TTL_SECONDS": "604801"},
            "UPLOAD_URL_TTL_SECONDS is at most 604800 \\(7 days\\) with S3",
        ),
        (
            {"S3_BUCKET": "b", "UPLOAD_EXPIRY_HOURS": "169"},
            "UPLOAD_EXPIRY_HOURS is at most 168 \\(7 days\\) with S3",
        ),
    ],
)
def test_s3_settings_that_cannot_work_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_upload_expiry_hours_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().upload_expiry_hours == 24
    monkeypatch.setenv("UPLOAD_EXPIRY_HOURS", "48")
    assert Settings().upload_expiry_hours == 48


# Webhooks.


def test_private_webhook_targets_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    with pytest.raises(ValidationError, match="WEBHOOK_ALLOW_PRIVATE_TARGETS must not be set when ENVIRONMENT"):
        Settings(environment="production")
    assert Settings(environment="development").webhook_allow_private_targets is True
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE_TARGETS")
    assert Settings(environment="production").webhook_allow_private_targets is False


def test_the_webhook_retry_schedule_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().webhook_retry_schedule_seconds == (300, 1800, 7200, 21600)  # the guide's
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", " 0.5, 1,2.5 ")
    monkeypatch.setenv("WEBHOOK_RETRY_JITTER", "0")
    monkeypatch.setenv("WEBHOOK_DISABLE_AFTER_SECONDS", "60")
    monkeypatch.setenv("WEBHOOK_ENDPOINT_CONCURRENCY", "3")
    settings = Settings()
    assert settings.webhook_retry_schedule_seconds == (0.5, 1, 2.5)
    assert (settings.webhook_retry_jitter, settings.webhook_disable_after_seconds) == (0, 60)
    assert settings.webhook_endpoint_concurrency == 3


def test_the_webhook_circuit_breaker_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.webhook_breaker_failures, settings.webhook_breaker_backoff_seconds) == (5, (10, 300))
    monkeypatch.setenv("WEBHOOK_BREAKER_FAILURES", "3")
    monkeypatch.setenv("WEBHOOK_BREAKER_BACKOFF_SECONDS", " 0.5, 2 ")
    settings = Settings()
    assert (settings.webhook_breaker_failures, settings.webhook_breaker_backoff_seconds) == (3, (0.5, 2))


@pytest.mark.parametrize("value", ["10", "10,5", "0,10", "10,300,600", "ten,300"])
def test_a_bad_breaker_back_off_stops_start_up(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEBHOOK_BREAKER_BACKOFF_SECONDS", value)
    with pytest.raises(ValidationError, match=r"WEBHOOK_BREAKER_BACKOFF_SECONDS: first,most in seconds.*e\.g\. 10,300"):
        Settings()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("300,60", "positive and increasing"),
        ("0,60", "positive and increasing"),
        ("5 min", "comma-separated seconds"),
        (",".join(str(n) for n in range(1, 30)), "at most 20 retries"),
    ],
)
def test_a_bad_webhook_retry_schedule_stops_start_up(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", value)
    with pytest.raises(ValidationError, match=message):
        Settings()
