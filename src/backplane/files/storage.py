"""Where file bytes live, behind one small interface.

LocalStorage: a directory (STORAGE_DIR). S3Storage (files/s3.py): an S3-compatible bucket, chosen
by `create_storage` when S3_BUCKET is set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from backplane.core.config import Settings

logger = logging.getLogger(__name__)


class StorageWriter(Protocol):
    async def write(self, chunk: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DirectUpload:
    """Bytes a client PUT straight to the storage's own pre-signed URL, now in place under their key."""

    size: int
    head: bytes  # the first bytes, for type detection
    sha256: str


class Storage(Protocol):
    async def writer(self, key: str) -> StorageWriter: ...
    def read(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None:
        """Remove `key`'s bytes, and anything PUT to its pre-signed URL; no error if there are none."""

    async def exists(self, key: str) -> bool: ...

    async def presigned_put(self, key: str, *, size: int, content_type: str, expires_at: datetime) -> str | None:
        """A URL that takes exactly `size` bytes of `content_type` with a PUT, straight into this storage,
        until `expires_at`; None when this storage has none (the API's own signed URL takes the bytes)."""

    async def take_upload(self, key: str, head_size: int) -> DirectUpload | None:
        """Move what was PUT to `presigned_put(key)`'s URL to `key`, out of the URL's reach; None if nothing was."""

    async def uploads_before(self, before: datetime) -> list[str]:
        """Keys whose pre-signed URL took bytes before `before` that `take_upload` never took."""

    async def discard_upload(self, key: str) -> None:
        """Delete what was PUT to `key`'s pre-signed URL, not the file at `key`."""

    async def aclose(self) -> None: ...


class _LocalWriter:
    """Bytes go to a temporary file that becomes `key` only on commit: nothing partial is ever visible."""

    def __init__(self, handle: IO[bytes], temporary: Path, final: Path) -> None:
        self._handle = handle
        self._temporary = temporary
        self._final = final

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self._handle.write, chunk)

    async def commit(self) -> None:
        def _commit() -> None:
            self._handle.close()
            self._final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._temporary, self._final)

        await asyncio.to_thread(_commit)

    async def abort(self) -> None:
        def _abort() -> None:
            self._handle.close()
            self._temporary.unlink(missing_ok=True)

        await asyncio.to_thread(_abort)


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    async def writer(self, key: str) -> StorageWriter:
        final = self._path(key)
        incoming = self.root / ".incoming"
        temporary = incoming / uuid.uuid4().hex

        def _open() -> IO[bytes]:
            incoming.mkdir(parents=True, exist_ok=True)
            return temporary.open("wb")

        return _LocalWriter(await asyncio.to_thread(_open), temporary, final)

    async def read(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).exists)

    async def presigned_put(self, key: str, *, size: int, content_type: str, expires_at: datetime) -> str | None:
        return None  # the API's own signed URL (files/presigned.py) takes the bytes

    async def take_upload(self, key: str, head_size: int) -> DirectUpload | None:
        return None  # uploads arrive through the API, already checked and in place

    async def uploads_before(self, before: datetime) -> list[str]:
        return []

    async def discard_upload(self, key: str) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def leftovers(self) -> list[Path]:
        """Temporary files not yet committed or aborted (tests: nothing partial is left behind)."""
        incoming = self.root / ".incoming"
        return sorted(incoming.iterdir()) if incoming.exists() else []


async def create_storage(settings: Settings) -> Storage:
    """The storage the settings choose: S3 when S3_BUCKET is set, else the STORAGE_DIR directory."""
    if settings.s3.enabled:
        # Imported here so that aiobotocore is loaded only by deployments that use it.
        from backplane.files.s3 import S3Storage

        where = f" at {settings.s3.endpoint_url}" if settings.s3.endpoint_url else ""
        logger.info("file storage: S3 bucket %s%s", settings.s3.bucket, where)
        return await S3Storage.open(settings.s3)
    logger.info("file storage: %s", settings.storage_dir)
    return LocalStorage(settings.storage_dir)
