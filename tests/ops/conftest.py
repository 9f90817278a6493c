"""Operating it: logs and the operator's commands. A worker runs jobs and webhook deliveries quickly here."""

from __future__ import annotations

import pytest

from backplane.core.config import Settings
from tests.jobs.conftest import FAST
from tests.webhooks.conftest import _receiver_server, receiver  # noqa: F401  (fixtures)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={**FAST, "webhook_allow_private_targets": True, "webhook_retry_jitter": 0.0})
