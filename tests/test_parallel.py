"""Parallel test processes (pytest-xdist) never share a Redis database: each flushes its own."""

from __future__ import annotations

import pytest

from tests.conftest import worker_redis_url


def test_each_test_worker_counts_down_from_the_base_redis_database() -> None:
    base = "redis://127.0.0.1:6379/15"
    assert worker_redis_url(base, None) == base  # a serial run
    assert worker_redis_url(base, "gw0") == "redis://127.0.0.1:6379/15"
    assert worker_redis_url(base, "gw1") == "redis://127.0.0.1:6379/14"
    assert worker_redis_url("redis://:pw@cache:6380/12?protocol=3", "gw2") == "redis://:pw@cache:6380/10?protocol=3"


def test_more_workers_than_databases_below_the_base_is_refused() -> None:
    with pytest.raises(pytest.UsageError, match="test worker gw2 would need Redis database -1"):
        worker_redis_url("redis://127.0.0.1:6379/1", "gw2")
