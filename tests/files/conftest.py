"""Files tests run on local storage; those parametrized with `backend` (indirect) on S3 as well."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from backplane.core.config import Settings
from tests.files import samples
from tests.fixtures.s3 import S3, moto_server, s3

__all__ = ["moto_server", "s3"]

BACKENDS = pytest.mark.parametrize("backend", ["local", "s3"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "local"))


@pytest.fixture
def settings(settings: Settings, backend: str, request: pytest.FixtureRequest) -> Settings:
    if backend == "s3":
        bucket: S3 = request.getfixturevalue("s3")
        return settings.model_copy(update={"s3": bucket.settings})
    return settings


@pytest.fixture
def stored(settings: Settings, request: pytest.FixtureRequest) -> Callable[[], Awaitable[list[str]]]:
    """Everything the storage holds, partial uploads included: local files, S3 objects and multipart uploads."""

    bucket: S3 | None = request.getfixturevalue("s3") if settings.s3.enabled else None

    async def _stored() -> list[str]:
        found = [str(path) for path in samples.stored_files(Path(settings.storage_dir))]
        if bucket is not None:
            found += await bucket.leftovers()
        return found

    return _stored
