"""Where file bytes live, behind one small interface.

LocalStorage: a directory (STORAGE_DIR). S3Storage (files/s3.py): an S3-compatible bucket, chosen
by `create_storage` when S3_BUCKET is set.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from backplane.core.config import Settings
from backplane.core.errors import Conflict

logger = logging.getLogger(__name__)


class PartsElsewhere(Conflict):
    """A part reached this service's own part URL, but the storage takes parts at its own pre-signed URLs
    (S3; for example a URL handed out before a switch from local storage)."""

    default_message = (
        "This upload takes its parts at the storage's own pre-signed URLs: GET /v1/files/uploads/{id} gives them."
    )


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


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart upload that the storage holds in full."""

    number: int
    size: int
    etag: str | None = None  # S3's, needed to complete


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

    # Multipart uploads (files/uploads.py): parts arrive separately, in any order, then are assembled.
    async def start_parts(self, key: str) -> str | None:
        """Begin a multipart upload for `key`; the storage's own upload id (S3), or None."""

    async def presigned_part(
        self, key: str, upload_id: str | None, number: int, *, size: int, expires_at: datetime
    ) -> str | None:
        """A URL that takes part `number` (exactly `size` bytes) with a PUT straight into this storage, or
        None when this storage has none (the API's own signed part URL takes the bytes)."""

    async def part_writer(self, key: str, number: int) -> StorageWriter:
        """Where the API's own part URL writes part `number`; committed, it replaces any earlier copy.
        PartsElsewhere when this storage takes parts only at its own URLs."""

    async def list_parts(self, key: str, upload_id: str | None) -> list[Part]:
        """The parts received in full, by number."""

    async def assemble(self, key: str, upload_id: str | None, parts: list[Part], head_size: int) -> DirectUpload:
        """Join `parts` in order into the file at `key` (streamed: never a whole file in memory); the parts
        are gone afterwards."""

    async def abort_parts(self, key: str, upload_id: str | None) -> None:
        """Delete every part of the upload (no error if there are none)."""

    async def parts_before(self, before: datetime) -> list[tuple[str, str | None]]:
        """(key, storage's upload id) of every multipart upload holding parts, last changed (local) or begun
        (S3) before `before`."""

    async def aclose(self) -> None: ...


class _LocalWriter:
    """Bytes go to a temporary file that becomes `key` only on commit: nothing partial is ever visible."""

    def __init__(self, handle: IO[bytes], temporary: Path, final: Path) -> None:
        self.handle = handle
        self._temporary = temporary
        self._final = final

    async def write(self, chunk: bytes) -> None:
        await asyncio.to_thread(self.handle.write, chunk)

    async def commit(self) -> None:
        def _commit() -> None:
            self.handle.close()
            self._final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._temporary, self._final)

        await asyncio.to_thread(_commit)

    async def abort(self) -> None:
        def _abort() -> None:
            self.handle.close()
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
        return await self._writer_to(self._path(key))

    async def _writer_to(self, final: Path) -> _LocalWriter:
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

    def _parts_dir(self, key: str) -> Path:
        return self._path(f".parts/{key}")

    async def start_parts(self, key: str) -> str | None:
        return None

    async def presigned_part(
        self, key: str, upload_id: str | None, number: int, *, size: int, expires_at: datetime
    ) -> str | None:
        return None  # the API's own signed part URL (files/uploads.py) takes the bytes

    async def part_writer(self, key: str, number: int) -> StorageWriter:
        # Written aside and renamed into place on commit: a part cut off mid-way is never listed, and
        # the same part sent twice at once leaves one whole copy.
        return await self._writer_to(self._parts_dir(key) / str(number))

    async def list_parts(self, key: str, upload_id: str | None) -> list[Part]:
        folder = self._parts_dir(key)

        def _list() -> list[Part]:
            if not folder.exists():
                return []
            found = [Part(int(p.name), p.stat().st_size) for p in folder.iterdir() if p.name.isdigit()]
            return sorted(found, key=lambda part: part.number)

        return await asyncio.to_thread(_list)

    async def assemble(self, key: str, upload_id: str | None, parts: list[Part], head_size: int) -> DirectUpload:
        folder = self._parts_dir(key)
        writer = await self._writer_to(self._path(key))

        def _join() -> DirectUpload:
            # One thread, one 1 MB buffer: the whole join runs off the event loop without a hop per chunk.
            digest, head, size = hashlib.sha256(), b"", 0
            for part in parts:
                with (folder / str(part.number)).open("rb") as source:
                    while chunk := source.read(1024 * 1024):
                        if len(head) < head_size:
                            head += chunk[: head_size - len(head)]
                        digest.update(chunk)
                        writer.handle.write(chunk)
                        size += len(chunk)
            return DirectUpload(size=size, head=head, sha256=digest.hexdigest())

        try:
            joined = await asyncio.to_thread(_join)
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        await self.abort_parts(key, upload_id)
        return joined

    async def abort_parts(self, key: str, upload_id: str | None) -> None:
        await asyncio.to_thread(shutil.rmtree, self._parts_dir(key), True)

    async def parts_before(self, before: datetime) -> list[tuple[str, str | None]]:
        root = self.root / ".parts"
        cutoff = before.timestamp()

        def _list() -> list[tuple[str, str | None]]:
            if not root.exists():
                return []
            return [
                (f"{folder.parent.name}/{folder.name}", None)
                for folder in root.glob("*/*")
                if folder.is_dir() and folder.stat().st_mtime < cutoff
            ]

        return await asyncio.to_thread(_list)

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
