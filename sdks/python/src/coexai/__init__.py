"""The CoExAI platform's Python SDK: `CoExAI` (sync) and `AsyncCoExAI` (asyncio) over httpx, webhook
verification, and the licensing client with `LicenseSessionManager`."""

from coexai._client import AsyncCoExAI, CoExAI
from coexai._http import RetryPolicy
from coexai._operations import JobParams
from coexai._version import __version__
from coexai.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    CoExAIError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from coexai.licensing import LicenseSessionManager, LicensingClient, get_hardware_id
from coexai.models import (
    Agent,
    AgentConfig,
    ApiKey,
    Event,
    File,
    Job,
    JobError,
    JobOutput,
    LicenseSession,
    Me,
    Organization,
    Webhook,
)

__all__ = [
    "APIConnectionError",
    "Agent",
    "AgentConfig",
    "ApiKey",
    "AsyncCoExAI",
    "AuthenticationError",
    "BadRequestError",
    "CoExAI",
    "CoExAIError",
    "ConflictError",
    "Event",
    "File",
    "InternalServerError",
    "Job",
    "JobError",
    "JobOutput",
    "JobParams",
    "LicenseSession",
    "LicenseSessionManager",
    "LicensingClient",
    "Me",
    "NotFoundError",
    "Organization",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "ValidationError",
    "WaitTimeoutError",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
    "get_hardware_id",
]
