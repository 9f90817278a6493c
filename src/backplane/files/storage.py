"""Where file bytes live, behind one small interface. LocalStorage: a directory (STORAGE_DIR)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol


class StorageWriter(Protocol):
    async def write(self, chunk: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class Storage(Protocol):
    async def writer(self, key: str) -> StorageWriter: ...
    def read(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...


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

    def leftovers(self) -> list[Path]:
        """Temporary files not yet committed or aborted (tests: nothing partial is left behind)."""
        incoming = self.root / ".incoming"
        return sorted(incoming.iterdir()) if incoming.exists() else []
