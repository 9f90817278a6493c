"""The Storage interface, on both backends: the directory and an S3 bucket (moto's server)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.files.s3 import S3Storage
from backplane.files.storage import LocalStorage, Storage, create_storage
from tests.files import samples
from tests.fixtures.s3 import S3

MB = 1024 * 1024
KEY = "3f1c1a52-0000-4000-8000-000000000001/file_0123456789abcdef01234567"


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | S3:
    if request.param == "s3":
        bucket: S3 = request.getfixturevalue("s3")
        return bucket
    return tmp_path


@pytest.fixture
async def storage(where: Path | S3) -> AsyncIterator[Storage]:
    if isinstance(where, Path):
        yield LocalStorage(where)
        return
    opened = await S3Storage.open(where.settings, part_size=5 * MB)
    yield opened
    await opened.aclose()


async def _leftovers(storage: Storage) -> list[str]:
    if isinstance(storage, LocalStorage):
        return [str(path) for path in samples.stored_files(storage.root)]
    assert isinstance(storage, S3Storage)
    bucket = storage.bucket
    listed = await storage.client.list_objects_v2(Bucket=bucket)
    uploads = await storage.client.list_multipart_uploads(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])] + [u["Key"] for u in uploads.get("Uploads", [])]


def _pattern(size: int) -> bytes:
    """Bytes that differ part to part, so a part out of order or repeated would show."""
    block = hashlib.sha256(str(size).encode()).digest() * 32  # 1 KiB
    counter = b"".join(i.to_bytes(4, "big") + block for i in range(size // len(block) + 1))
    return counter[:size]


async def _write(storage: Storage, key: str, data: bytes, chunk: int = MB) -> None:
    writer = await storage.writer(key)
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])
    await writer.commit()


async def _read(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def test_write_read_exists_delete(storage: Storage) -> None:
    data = samples.pdf()
    assert not await storage.exists(KEY)
    await _write(storage, KEY, data)
    assert await storage.exists(KEY)
    assert await _read(storage, KEY) == data
    await storage.delete(KEY)
    assert not await storage.exists(KEY)
    await storage.delete(KEY)  # deleting nothing is fine
    assert await _leftovers(storage) == []


async def test_a_file_larger_than_a_part_round_trips(storage: Storage) -> None:
    data = _pattern(12 * MB + 123)  # three parts of 5 MB or more, the last one shorter
    await _write(storage, KEY, data, chunk=256 * 1024)
    assert hashlib.sha256(await _read(storage, KEY)).digest() == hashlib.sha256(data).digest()
    expected = [str(storage.root / KEY)] if isinstance(storage, LocalStorage) else [f"tenant-files/{KEY}"]
    assert await _leftovers(storage) == expected


async def test_abort_after_parts_were_sent_leaves_nothing(storage: Storage) -> None:
    writer = await storage.writer(KEY)
    for _ in range(11):
        await writer.write(b"x" * MB)
    if isinstance(storage, S3Storage):  # two parts went up already
        uploads = await storage.client.list_multipart_uploads(Bucket=storage.bucket)
        assert [u["Key"] for u in uploads["Uploads"]] == [f"tenant-files/{KEY}"]
    await writer.abort()
    assert not await storage.exists(KEY)
    assert await _leftovers(storage) == []


async def test_local_storage_has_no_presigned_urls_of_its_own(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path)
    expires_at = utcnow() + timedelta(hours=1)
    assert await local.presigned_put(KEY, size=10, content_type="application/pdf", expires_at=expires_at) is None
    assert await local.take_upload(KEY, 8192) is None
    assert await local.uploads_before(utcnow()) == []


async def test_s3_presigned_put_signs_size_and_type_and_take_moves_the_bytes(s3: S3) -> None:
    storage = await S3Storage.open(s3.settings)
    try:
        data = samples.png()
        url = await storage.presigned_put(
            KEY, size=len(data), content_type="image/png", expires_at=utcnow() + timedelta(seconds=600)
        )
        assert url is not None
        query = parse_qs(urlsplit(url).query)
        assert urlsplit(url).path == f"/{s3.bucket}/tenant-files/uploads/{KEY}"
        assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
        assert 599 <= int(query["X-Amz-Expires"][0]) <= 600
        assert await storage.take_upload(KEY, 8192) is None

        async with httpx.AsyncClient() as http:
            put = await http.put(url, content=data, headers={"Content-Type": "image/png"})
        assert put.status_code == 200, put.text
        taken = await storage.take_upload(KEY, 16)
        assert taken is not None
        assert (taken.size, taken.head, taken.sha256) == (len(data), data[:16], hashlib.sha256(data).hexdigest())
        assert await s3.keys() == [f"tenant-files/{KEY}"]
        assert await _read(storage, KEY) == data
        assert await storage.take_upload(KEY, 16) is None  # taken once
    finally:
        await storage.aclose()


async def test_s3_lists_uploads_older_than_a_cutoff_and_discards_them(s3: S3) -> None:
    storage = await S3Storage.open(s3.settings)
    try:
        await s3.put(storage.upload_key("org/file_old"), b"stale")
        await s3.put(storage.object_key("org/file_old"), b"the file itself, not an upload")
        assert await storage.uploads_before(utcnow() - timedelta(minutes=5)) == []
        assert await storage.uploads_before(utcnow() + timedelta(seconds=5)) == ["org/file_old"]
        await storage.discard_upload("org/file_old")
        assert await s3.keys() == ["tenant-files/org/file_old"]
    finally:
        await storage.aclose()


async def test_create_storage_follows_the_settings(settings: Settings, s3: S3) -> None:
    local = await create_storage(settings)
    assert isinstance(local, LocalStorage) and local.root == settings.storage_dir.resolve()
    remote = await create_storage(settings.model_copy(update={"s3": s3.settings}))
    try:
        assert isinstance(remote, S3Storage)
        assert (remote.bucket, remote.prefix) == (s3.bucket, "tenant-files/")
    finally:
        await remote.aclose()
