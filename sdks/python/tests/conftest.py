"""The SDK's tests run against real `backplane serve` and `backplane worker` processes: the ones the SDK
suites share (tests/fixtures/sdk_service.py), started once per test process, with a database and a Redis
server of their own. Each test signs up a fresh account, so tests share the processes, not data.

This folder is not a package (the repository's own tests are the `tests` package), so its modules are
named `test_sdk_*` to stay unique in the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fixtures.sdk_service import PASSWORD, Account, SdkService, sign_up

# The shared processes' fixture, one for this folder and tests/ (which names the same plugin).
pytest_plugins = ["tests.fixtures.sdk_service"]

__all__ = ["EXAMPLES", "PASSWORD", "Account", "sign_up"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def base_url(sdk_service: SdkService) -> str:
    return sdk_service.base_url


@pytest.fixture
def account(base_url: str) -> Account:
    return sign_up(base_url)
