"""Settings, read once from the environment (and `.env`) by pydantic-settings.

Each section is its own settings class so that a reader finds the database knobs under
`settings.database` and the token lifetimes under `settings.auth`; the environment variable
names are the flat ones from the specification (DATABASE_URL, SECRET_KEY, ...).
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {
    "changeme",
    "change-me",
    "secret",
    "dev",
    "development",
    "test",
    "please-change",
}
MIN_SECRET_KEY_LENGTH = 32


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class _Section(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)


class DatabaseSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="DATABASE_")

    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/backplane"
    pool_size: int = 10
    connect_timeout_seconds: float = 3.0


class RedisSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: str = "redis://127.0.0.1:6379/0"
    timeout_seconds: float = 3.0


class AuthSettings(_Section):
    secret_key: SecretStr | None = None
    secrets_dir: Path = Path(".secrets")
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=604800, gt=0)
    email_token_ttl_seconds: int = Field(default=86400, gt=0)
    password_reset_ttl_seconds: int = Field(default=3600, gt=0)


class EmailSettings(_Section):
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    email_from: str = "Backplane <no-reply@backplane.local>"


class Settings(_Section):
    environment: Environment = Environment.development
    public_base_url: str = "http://127.0.0.1:8000"
    rate_limits_enabled: bool = True
    seat_lease_ttl_seconds: int = Field(default=360, gt=0)
    license_key_prefix: str = Field(default="PROD", pattern=r"^[A-Z]{2,8}$")
    webhook_allow_private_targets: bool = False
    storage_dir: Path = Path("./var/files")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @model_validator(mode="after")
    def _check_secret_key(self) -> Settings:
        key = self.auth.secret_key.get_secret_value() if self.auth.secret_key else None
        if self.is_production:
            if not key:
                raise ValueError("SECRET_KEY is required when ENVIRONMENT=production")
            if len(key) < MIN_SECRET_KEY_LENGTH or key.lower() in _PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"SECRET_KEY is too weak for production: use at least {MIN_SECRET_KEY_LENGTH} "
                    "random characters (for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
                )
        elif not key:
            self.auth.secret_key = SecretStr(_dev_secret(self.auth.secrets_dir / "secret_key"))
        return self

    @property
    def secret_key(self) -> str:
        assert self.auth.secret_key is not None  # set by the validator
        return self.auth.secret_key.get_secret_value()


def _dev_secret(path: Path) -> str:
    """A development secret generated once and kept on disk, so restarts keep tokens valid."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
