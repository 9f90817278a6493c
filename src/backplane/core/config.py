"""Settings, read once from the environment (and `.env`) by pydantic-settings.

Each section is its own settings class so that a reader finds the database knobs under
`settings.database` and the token lifetimes under `settings.auth`; the environment variable
names are the flat ones from the specification (DATABASE_URL, SECRET_KEY, ...).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backplane.core.crypto import derive_key, parse_keys

MIN_SECRET_KEY_LENGTH = 32
# The checkout this module runs from (src/backplane/core/ -> the repository), where `make install` builds the
# dashboard; an installed (non-editable) copy sets DASHBOARD_DIR instead.
REPOSITORY_DIR = Path(__file__).resolve().parents[3]
MAX_S3_PRESIGN_SECONDS = 7 * 86400  # SigV4's limit on X-Amz-Expires
_METER_AGENT = re.compile(r"[a-z0-9_-]{1,64}")
_METER_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class _Section(BaseSettings):
    # env_ignore_empty: `VAR=` (what a compose file's `${VAR:-}` passes) is the same as no VAR at all.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)


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
    smtp_tls: bool | None = Field(
        default=None,
        # SMTP_STARTTLS is the name this setting had before; it is still read.
        validation_alias=AliasChoices("smtp_tls", "smtp_starttls"),
        description="Unset: STARTTLS whenever the server offers it; true: STARTTLS required; false: never.",
    )
    email_from: str = "Backplane <no-reply@backplane.local>"
    email_outbox_dir: Path = Field(
        default=Path("./var/mail"),
        description="Without SMTP_HOST, each email is written here as a .eml file (the log says which, never "
        "its links).",
    )


class BillingMode(StrEnum):
    stripe = "stripe"
    local = "local"  # checkouts complete on this service, without payment (development, demos)


class StripeSettings(_Section):
    """BILLING_MODE, or else: Stripe with STRIPE_SECRET_KEY, local billing mode without it."""

    billing_mode: BillingMode | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # another host for the stripe library (tests' stand-in)
    stripe_webhook_tolerance_seconds: int = 300
    stripe_price_pro_monthly: str = "price_pro_monthly"
    stripe_price_enterprise_monthly: str = "price_enterprise_monthly"
    past_due_grace_seconds: int = Field(default=7 * 86400, ge=0)
    stripe_portal_return_url: str | None = Field(
        default=None,
        description="Where Stripe's Billing Portal sends the customer back to; unset: PUBLIC_BASE_URL.",
    )
    stripe_meter_event_names: str = Field(
        default="",
        description="Meters completed live jobs report to, per agent, as `agent=meter` pairs separated by commas "
        "(e.g. `maya=maya_jobs,sam=seo_audits`); an agent not named reports to `{agent}_job_completed`.",
    )

    stripe_connect_enabled: bool = Field(
        default=False, description="Stripe Connect for platforms building on the service (/v1/connect/account)."
    )
    stripe_connect_webhook_secret: SecretStr | None = Field(
        default=None, description="`whsec_…` of the Connect webhook endpoint (account.updated)."
    )
    stripe_connect_redirect_allowlist: str = Field(
        default="",
        description="Comma-separated origins (https://app.example.com) that onboarding refresh and return URLs "
        "may be on.",
    )

    @field_validator("stripe_connect_redirect_allowlist")
    @classmethod
    def _check_connect_allowlist(cls, value: str) -> str:
        for origin in _split(value):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(f"STRIPE_CONNECT_REDIRECT_ALLOWLIST: {origin!r} is not an origin like https://host")
        return value

    @property
    def connect_origins(self) -> frozenset[str]:
        return frozenset(origin.rstrip("/") for origin in _split(self.stripe_connect_redirect_allowlist))

    @field_validator("stripe_portal_return_url")
    @classmethod
    def _check_return_url(cls, value: str | None) -> str | None:
        return check_frontend_url(value.strip(), "STRIPE_PORTAL_RETURN_URL") if value and value.strip() else None

    @field_validator("stripe_meter_event_names")
    @classmethod
    def _check_meter_names(cls, value: str) -> str:
        for pair in _split(value):
            agent, equals, meter = (part.strip() for part in pair.partition("="))
            if not equals or not _METER_AGENT.fullmatch(agent) or not _METER_NAME.fullmatch(meter):
                raise ValueError(
                    f"STRIPE_METER_EVENT_NAMES: {pair!r} is not `agent=meter_event_name` (letters, digits, _ and -, "
                    "at most 100 characters)"
                )
        return value

    def meter_event_name(self, agent_id: str) -> str:
        """The Stripe meter event a completed job of `agent_id` reports to."""
        for pair in _split(self.stripe_meter_event_names):
            agent, _, meter = (part.strip() for part in pair.partition("="))
            if agent == agent_id:
                return meter
        return f"{agent_id}_job_completed"

    @property
    def mode(self) -> BillingMode:
        if self.billing_mode is not None:
            return self.billing_mode
        return BillingMode.stripe if self.stripe_secret_key is not None else BillingMode.local

    @property
    def local_mode(self) -> bool:
        return self.mode is BillingMode.local

    @model_validator(mode="after")
    def _check_mode(self) -> StripeSettings:
        if self.billing_mode is BillingMode.stripe and self.stripe_secret_key is None:
            raise ValueError("BILLING_MODE=stripe needs STRIPE_SECRET_KEY")
        return self


class OAuthSettings(_Section):
    """Sign-in with Google, Microsoft and GitHub; a provider is enabled by its client id and secret."""

    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    microsoft_tenant: str = Field(default="common", pattern=r"^[A-Za-z0-9.-]{1,100}$")
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    # One base URL under which every endpoint of that provider is served, at the provider's own
    # paths (the tests' stand-in, or a proxy); unset: the provider's real hosts.
    google_oauth_base_url: str | None = None
    microsoft_oauth_base_url: str | None = None
    github_oauth_base_url: str | None = None
    oauth_redirect_allowlist: str = Field(
        default="", description="Comma-separated frontend URLs a sign-in may end on (exact match)."
    )
    oauth_frontend_callback_url: str | None = Field(
        default=None, description="Where a sign-in ends by default; unset: PUBLIC_BASE_URL + /auth/callback."
    )
    oauth_token_delivery: Literal["fragment", "cookie"] = "fragment"
    oauth_state_ttl_seconds: int = Field(default=600, gt=0)
    oauth_http_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("oauth_frontend_callback_url")
    @classmethod
    def _check_callback(cls, value: str | None) -> str | None:
        return check_frontend_url(value.strip(), "OAUTH_FRONTEND_CALLBACK_URL") if value and value.strip() else None

    @field_validator("google_oauth_base_url", "microsoft_oauth_base_url", "github_oauth_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        return check_frontend_url(value.strip(), "*_OAUTH_BASE_URL").rstrip("/") if value and value.strip() else None

    @field_validator("oauth_redirect_allowlist")
    @classmethod
    def _check_allowlist(cls, value: str) -> str:
        for url in _split(value):
            check_frontend_url(url, "OAUTH_REDIRECT_ALLOWLIST")
        return value

    @property
    def redirect_allowlist(self) -> frozenset[str]:
        return frozenset(_split(self.oauth_redirect_allowlist))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def check_frontend_url(url: str, source: str) -> str:
    """An absolute http(s) URL without a fragment (the fragment is where tokens are delivered)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or "#" in url:
        raise ValueError(f"{source}: {url!r} must be an absolute http(s) URL without a #fragment")
    return url


class S3Settings(_Section):
    """Set S3_BUCKET to keep files in an S3-compatible bucket (AWS S3, MinIO, R2, ...) instead of STORAGE_DIR.

    Without S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, AWS's usual credential chain applies
    (AWS_ACCESS_KEY_ID, an instance or task role, ...); without S3_REGION, AWS_REGION or us-east-1.
    """

    model_config = SettingsConfigDict(env_prefix="S3_")

    bucket: str | None = None
    endpoint_url: str | None = Field(default=None, description="Another S3-compatible service (MinIO, R2, ...).")
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = Field(default="", description="Keys start with this, e.g. `backplane/`.")

    @property
    def enabled(self) -> bool:
        return self.bucket is not None

    @model_validator(mode="after")
    def _check(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both or neither")
        others = (self.endpoint_url, self.region, self.access_key_id, self.prefix)
        if self.bucket is None and any(others):
            raise ValueError("S3_BUCKET is required when other S3_ settings are given")
        self.prefix = self.prefix.strip("/") + "/" if self.prefix.strip("/") else ""
        return self


class Settings(_Section):
    environment: Environment = Environment.development
    public_base_url: str = "http://127.0.0.1:8000"
    rate_limits_enabled: bool = True
    log_format: Literal["json", "text"] | None = Field(
        default=None, description="json: one JSON object per line; text: for a terminal. Unset: json in production."
    )
    docs_public: bool | None = Field(
        default=None, description="Serve /docs, /redoc and /openapi.json; unset: everywhere but production."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve the Prometheus metrics on this port (same host as the API) instead of GET /metrics "
        "on the API port.",
    )
    max_request_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body any route reads, except streamed uploads (which have the plan's limit).",
    )
    trusted_proxies: str = Field(
        default="", description="Comma-separated CIDRs whose X-Forwarded-For is believed (e.g. your load balancer)."
    )
    seat_lease_ttl_seconds: int = Field(default=360, gt=0)
    seat_fast_path: bool = Field(
        default=True,
        description="Answer the seat routes' success path without FastAPI's per-request machinery "
        "(licenses/fast_path.py); false: every seat request through its FastAPI route.",
    )
    free_license_seats: int = Field(
        default=1, ge=0, le=1000, description="Seats of the free license a new organization gets; 0: none."
    )
    max_organizations_per_user: int = Field(
        default=10, ge=1, le=10_000, description="Organizations one user may own or belong to."
    )
    invitation_ttl_hours: int = Field(default=72, gt=0, le=24 * 90, description="How long an invitation is valid.")
    license_key_prefix: str = Field(default="PROD", pattern=r"^[A-Z]{2,8}$")
    license_signing_key: SecretStr | None = Field(default=None, description="Ed25519 private key, PEM (PKCS#8).")
    license_file_ttl_seconds: int = Field(
        default=2592000, gt=0, description="How long a downloaded license file is valid."
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys for secrets at rest, newest first (the first encrypts, all "
        "decrypt); unset: derived from SECRET_KEY (not in production).",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Let webhooks and agent fetches reach loopback and private addresses (not in production).",
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="Total time one webhook delivery attempt may take."
    )
    # Webhook retries: the defaults are the platform guide's; tests shrink them to run in seconds.
    webhook_retry_schedule_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(300, 1800, 7200, 21600),
        description="When the retries of a failed delivery are due, in seconds after its first attempt "
        "(comma-separated, increasing); one attempt more than there are values.",
    )
    webhook_retry_jitter: float = Field(
        default=0.1, ge=0, le=1, description="A retry is due up to this fraction of its wait later, at random."
    )
    job_webhook_progress_interval_ms: int = Field(
        default=1000,
        ge=0,
        le=3_600_000,
        description="A job's own webhook gets at most one progress notification per this many milliseconds.",
    )
    webhook_disable_after_seconds: float = Field(
        default=5 * 86400, gt=0, description="An endpoint whose every attempt failed for this long is disabled."
    )
    webhook_endpoint_concurrency: int = Field(
        default=10, ge=1, le=100, description="Attempts in flight to one endpoint at once, across all workers."
    )
    webhook_breaker_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive failed attempts after which an endpoint's circuit breaker opens: its deliveries "
        "wait in Redis, unattempted, until the back-off ends and one probe attempt succeeds.",
    )
    webhook_breaker_backoff_seconds: Annotated[tuple[float, float], NoDecode] = Field(
        default=(10.0, 300.0),
        description="An open breaker's first back-off and the most it doubles to after each failed probe "
        "(seconds, comma-separated).",
    )
    storage_dir: Path = Path("./var/files")
    dashboard_dir: Path = Field(
        default=REPOSITORY_DIR / "dashboard" / "dist",
        description="The built dashboard (`make install` builds dashboard/ into dashboard/dist), served at "
        "/dashboard/; missing: /dashboard/ answers 503.",
    )
    upload_url_ttl_seconds: int = Field(default=3600, gt=0)
    # Multipart uploads (POST /v1/files/uploads): their part URLs work this long, then the cron frees them.
    upload_expiry_hours: int = Field(default=24, gt=0)
    # Jobs. The defaults suit production; tests shrink them to run the lifecycle in seconds.
    agent_test_mode: bool = Field(default=False, description="Register the test agents (never in production).")
    job_worker_concurrency: int = Field(default=10, ge=1, le=1000, description="Agent jobs one worker runs at once.")
    job_max_attempts: int = Field(default=3, ge=1, le=10)
    job_retry_base_seconds: float = Field(default=30.0, ge=0, description="Backoff: base * 4^(attempt-1).")
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_stall_seconds: float = Field(default=60.0, gt=0, description="No heartbeat for this long: the worker is gone.")
    job_dispatch_timeout_seconds: float = Field(default=300.0, gt=0)
    recovery_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Work whose Redis message was lost (a job handed out, a webhook delivery due) is found "
        "again from PostgreSQL within this long after Redis answers again.",
    )
    job_sweep_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often `jobs.sweep` runs: an arq cron job, so whole seconds (at least 1)."
    )
    job_poll_seconds: float = Field(
        default=0.1, gt=0, le=5, description="How often an idle jobs worker polls its arq queue (start latency)."
    )
    agent_parser_cpu_seconds: int = Field(
        default=120, ge=1, description="CPU time one file's parse may use (pypdf, python-docx, Pillow; Tesseract each)."
    )
    agent_parser_memory_mb: int = Field(
        default=1024, ge=256, description="Address space of the process that parses one file (and of its Tesseract)."
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API base (e.g. https://api.openai.com/v1); unset: agents run offline pipelines.",
    )
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_transcription_model: str = Field(
        default="whisper-1",
        description="The model `POST {LLM_BASE_URL}/audio/transcriptions` is asked for (maya's audio and video).",
    )
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_response_bytes: int = Field(
        default=1024 * 1024, gt=0, description="A chat completions answer larger than this is given up (offline)."
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    s3: S3Settings = Field(default_factory=S3Settings)

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @property
    def log_format_effective(self) -> Literal["json", "text"]:
        return self.log_format or ("json" if self.is_production else "text")

    @property
    def docs_public_enabled(self) -> bool:
        return self.docs_public if self.docs_public is not None else not self.is_production

    @property
    def dashboard_built(self) -> bool:
        """Whether this server serves the dashboard (DASHBOARD_DIR has index.html): mailed links open its pages."""
        return (self.dashboard_dir / "index.html").is_file()

    @model_validator(mode="after")
    def _no_test_agents_in_production(self) -> Settings:
        if self.is_production and self.agent_test_mode:
            raise ValueError("AGENT_TEST_MODE must not be set when ENVIRONMENT=production")
        return self

    @model_validator(mode="after")
    def _no_private_targets_in_production(self) -> Settings:
        if self.is_production and self.webhook_allow_private_targets:
            raise ValueError(
                "WEBHOOK_ALLOW_PRIVATE_TARGETS must not be set when ENVIRONMENT=production: customer URLs "
                "could then reach this network's own services"
            )
        return self

    @field_validator("webhook_retry_schedule_seconds", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(float(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError(
                    "WEBHOOK_RETRY_SCHEDULE_SECONDS: comma-separated seconds, e.g. 300,1800,7200,21600"
                ) from None
        return value

    @field_validator("webhook_breaker_backoff_seconds", mode="before")
    @classmethod
    def _parse_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                parsed = tuple(float(part) for part in value.split(",") if part.strip())
            except ValueError:
                parsed = ()
            if len(parsed) != 2:
                raise ValueError("WEBHOOK_BREAKER_BACKOFF_SECONDS: first,most in seconds, e.g. 10,300")
            return parsed
        return value

    @field_validator("webhook_breaker_backoff_seconds")
    @classmethod
    def _check_backoff(cls, value: tuple[float, float]) -> tuple[float, float]:
        first, most = value
        if first <= 0 or most < first:
            raise ValueError("WEBHOOK_BREAKER_BACKOFF_SECONDS: first,most in seconds, 0 < first <= most, e.g. 10,300")
        return value

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _check_schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) > 20:
            raise ValueError("WEBHOOK_RETRY_SCHEDULE_SECONDS: at most 20 retries")
        if any(v <= 0 for v in value) or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("WEBHOOK_RETRY_SCHEDULE_SECONDS: positive and increasing, e.g. 300,1800,7200,21600")
        return value

    @model_validator(mode="after")
    def _check_secret_key(self) -> Settings:
        key = self.auth.secret_key.get_secret_value() if self.auth.secret_key else None
        if not key and self.is_production:
            raise ValueError("SECRET_KEY is required when ENVIRONMENT=production")
        if not key:
            key = _dev_secret(self.auth.secrets_dir / "secret_key")
            self.auth.secret_key = SecretStr(key)
        # In every environment: HS256 with a shorter key can be brute-forced from one token.
        if len(key.encode()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"SECRET_KEY is too short: it must be at least {MIN_SECRET_KEY_LENGTH} bytes of random text "
                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), or unset outside "
                "production to have one generated"
            )
        return self

    @model_validator(mode="after")
    def _check_upload_url_ttl(self) -> Settings:
        if self.s3.enabled and self.upload_url_ttl_seconds > MAX_S3_PRESIGN_SECONDS:
            raise ValueError(
                f"UPLOAD_URL_TTL_SECONDS is at most {MAX_S3_PRESIGN_SECONDS} (7 days) with S3: "
                "S3 refuses pre-signed URLs valid for longer"
            )
        if self.s3.enabled and self.upload_expiry_hours * 3600 > MAX_S3_PRESIGN_SECONDS:
            raise ValueError(
                f"UPLOAD_EXPIRY_HOURS is at most {MAX_S3_PRESIGN_SECONDS // 3600} (7 days) with S3: "
                "S3 refuses pre-signed part URLs valid for longer"
            )
        return self

    @model_validator(mode="after")
    def _check_license_signing_key(self) -> Settings:
        pem = self.license_signing_key.get_secret_value().strip() if self.license_signing_key else ""
        if pem:
            pem = pem.replace("\\n", "\n") + "\n"  # a one-line env var may carry its newlines escaped
            load_signing_key(pem, source="LICENSE_SIGNING_KEY")
        elif self.is_production:
            raise ValueError(
                "LICENSE_SIGNING_KEY is required when ENVIRONMENT=production: an Ed25519 private key in PEM "
                "(for example from `openssl genpkey -algorithm ed25519`)"
            )
        else:
            path = self.auth.secrets_dir / "license_signing_key.pem"
            pem = _dev_signing_key(path)
            load_signing_key(pem, source=f"{path} (delete it to generate a new development key)")
        self.license_signing_key = SecretStr(pem)
        return self

    @model_validator(mode="after")
    def _check_encryption_keys(self) -> Settings:
        value = self.encryption_keys.get_secret_value().strip() if self.encryption_keys else ""
        if value:
            parse_keys(value)
        elif self.is_production:
            raise ValueError(
                "ENCRYPTION_KEYS is required when ENVIRONMENT=production: one or more Fernet keys, comma-separated "
                "(`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            )
        return self

    @model_validator(mode="after")
    def _production_defaults(self) -> Settings:
        """Production refuses what only tests and development want, naming each problem on its own line.

        Last of the production checks, so that each earlier one still reports its own problem first.
        """
        if not self.is_production:
            return self
        problems = []
        if self.stripe.billing_mode is None and self.stripe.local_mode:
            problems.append(
                "BILLING_MODE=local must be set explicitly when ENVIRONMENT=production without STRIPE_SECRET_KEY "
                "(in local billing mode checkouts complete on this service, without payment)"
            )
        hooks = {
            "STRIPE_API_BASE": self.stripe.stripe_api_base,
            "GOOGLE_OAUTH_BASE_URL": self.oauth.google_oauth_base_url,
            "MICROSOFT_OAUTH_BASE_URL": self.oauth.microsoft_oauth_base_url,
            "GITHUB_OAUTH_BASE_URL": self.oauth.github_oauth_base_url,
        }
        for name, url in hooks.items():
            if url and urlsplit(url).scheme != "https":
                problems.append(f"{name} must be an https URL when ENVIRONMENT=production, not {url!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def encryption_key_ring(self) -> list[bytes]:
        """ENCRYPTION_KEYS, newest first; in development and tests one key derived from SECRET_KEY."""
        value = self.encryption_keys.get_secret_value().strip() if self.encryption_keys else ""
        return parse_keys(value) if value else [derive_key(self.secret_key)]

    @property
    def secret_key(self) -> str:
        assert self.auth.secret_key is not None  # set by the validator
        return self.auth.secret_key.get_secret_value()

    @property
    def token_issuer(self) -> str:
        """The `iss` of the JWTs this deployment issues and accepts: PUBLIC_BASE_URL."""
        return self.public_base_url.rstrip("/")

    @property
    def oauth_frontend_callback_url(self) -> str:
        return self.oauth.oauth_frontend_callback_url or f"{self.public_base_url.rstrip('/')}/auth/callback"

    @property
    def license_signing_pem(self) -> str:
        assert self.license_signing_key is not None  # set by the validator
        return self.license_signing_key.get_secret_value()


def _dev_secret(path: Path) -> str:
    """A development secret generated once and kept on disk, so restarts keep tokens valid.

    Published like the signing key below: processes starting at once (an API and a worker, parallel
    test processes) never read a half-written secret, and all end up with the same one.
    """
    if path.exists():
        return path.read_text().strip()
    return _publish_once(path, secrets.token_urlsafe(48).encode()).strip()


def load_signing_key(pem: str, *, source: str = "the license signing key") -> Ed25519PrivateKey:
    """The Ed25519 private key in `pem`, or a ValueError that says what is wrong (never the key)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise ValueError(f"{source} is an encrypted PEM key; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(
            f"{source} is not a readable PEM private key; expected '-----BEGIN PRIVATE KEY-----' "
            "holding an Ed25519 key (`openssl genpkey -algorithm ed25519`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{source} must be an Ed25519 key, not {type(key).__name__.removeprefix('_')}")
    return key


def _dev_signing_key(path: Path) -> str:
    """A development signing key generated once and kept on disk, so issued files stay verifiable;
    concurrent first starts all get the same one (`_publish_once`)."""
    if path.exists():
        return path.read_text()
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return _publish_once(path, pem)


def _publish_once(path: Path, content: bytes) -> str:
    """Write `content` to `path` unless it exists, atomically: to a temporary file hard-linked into place,
    so that concurrent writers never expose half a file and the first to finish wins. What `path` holds."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.link(draft, path)
    except FileExistsError:
        pass  # another process got there first; use its content
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text()


@lru_cache
def get_settings() -> Settings:
    return Settings()
