"""S3Storage: file bytes in an S3-compatible bucket (AWS S3, MinIO, R2, ...), through aiobotocore.

Keys: a file lives at `<S3_PREFIX><org>/<file id>`; a pre-signed PUT URL points at
`<S3_PREFIX>uploads/<org>/<file id>` instead. S3 cannot make a URL work once, so `take_upload`
(at confirm) copies the bytes to the file's own key, server-side, and deletes the upload object:
the checks then run on that copy, and a PUT to the URL after confirm lands in `uploads/` only,
where it never changes the file and the cleanup cron deletes it.

Uploads stream with a multipart upload: memory holds one part (PART_SIZE and the chunk that
crossed it; twice that for a moment while it is handed over to be sent), and an abort calls
AbortMultipartUpload so that no part stays behind. Give the bucket an AbortIncompleteMultipartUpload
lifecycle rule for uploads cut off by a crash.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import logging
import math
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from backplane.billing.plans import MB
from backplane.core.config import S3Settings
from backplane.core.db import utcnow
from backplane.files.storage import DirectUpload, Part, PartsElsewhere, StorageWriter

logger = logging.getLogger(__name__)

PART_SIZE = 8 * MB  # S3's minimum is 5 MB for every part but the last
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_NO_UPLOAD = {"404", "NoSuchUpload"}


@functools.cache
def _session() -> AioSession:
    """One botocore session per process: it loads S3's service model once for every client."""
    return get_session()


def _not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND


class _S3Writer:
    """A multipart upload fed one part at a time; small files go up with a single PutObject on commit."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= self._part_size:
            await self._send_part()

    async def _send_part(self) -> None:
        if self._upload_id is None:
            created = await self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        # bytes, not the bytearray: aiohttp sends bytes without warning it might block the loop.
        body = bytes(self._buffer)
        self._buffer.clear()
        sent = await self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    async def commit(self) -> None:
        if self._upload_id is None:
            await self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            self._buffer.clear()
            return
        if self._buffer:
            await self._send_part()
        await self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None

    async def abort(self) -> None:
        self._buffer.clear()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            await self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        except (BotoCoreError, ClientError):
            # The refusal the caller is raising matters more; the bucket's lifecycle rule is the backstop.
            logger.warning("could not abort the multipart upload of %s (%s)", self._key, upload_id, exc_info=True)


class S3Storage:
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        part_size: int = PART_SIZE,
        *,
        closing: contextlib.AsyncExitStack | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = max(part_size, 5 * MB)
        self._closing = closing or contextlib.AsyncExitStack()

    @classmethod
    async def open(cls, settings: S3Settings, *, part_size: int = PART_SIZE) -> S3Storage:
        assert settings.bucket is not None
        config = AioConfig(
            signature_version="s3v4",  # pre-signed URLs need SigV4 to sign Content-Length and Content-Type
            # Checksums only where S3 requires them: several S3-compatible services refuse the
            # default CRC32 headers botocore now adds to every upload.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=64,  # a streaming download holds its connection until it ends
        )
        exit_stack = contextlib.AsyncExitStack()
        client = await exit_stack.enter_async_context(
            _session().create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=settings.access_key_id.get_secret_value() if settings.access_key_id else None,
                aws_secret_access_key=(
                    settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
                ),
                config=config,
            )
        )
        return cls(client, settings.bucket, settings.prefix, part_size, closing=exit_stack)

    async def aclose(self) -> None:
        await self._closing.aclose()

    def object_key(self, key: str) -> str:
        return self.prefix + key

    def upload_key(self, key: str) -> str:
        return f"{self.prefix}uploads/{key}"

    async def writer(self, key: str) -> StorageWriter:
        return _S3Writer(self.client, self.bucket, self.object_key(key), self.part_size)

    async def read(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        response = await self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    async def delete(self, key: str) -> None:
        for name in (self.object_key(key), self.upload_key(key)):
            await self.client.delete_object(Bucket=self.bucket, Key=name)  # S3 answers 204 for a missing key too

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    async def presigned_put(self, key: str, *, size: int, content_type: str, expires_at: datetime) -> str | None:
        # Content-Length and Content-Type become signed headers: S3 refuses a PUT of another size or type.
        url: str = await self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.upload_key(key),
                "ContentLength": size,
                "ContentType": content_type,
            },
            ExpiresIn=max(1, math.ceil((expires_at - utcnow()).total_seconds())),
        )
        return url

    async def take_upload(self, key: str, head_size: int) -> DirectUpload | None:
        target = self.object_key(key)
        try:
            # A server-side snapshot: whatever is PUT to the URL from now on cannot reach `target`.
            copied = await self.client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": self.upload_key(key)},
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        await self.client.delete_object(Bucket=self.bucket, Key=self.upload_key(key))
        size = (await self.client.head_object(Bucket=self.bucket, Key=target))["ContentLength"]
        head = b""
        if size > 0:
            ranged = await self.client.get_object(Bucket=self.bucket, Key=target, Range=f"bytes=0-{head_size - 1}")
            async with ranged["Body"] as body:
                head = await body.read()
        return DirectUpload(size=size, head=head, sha256=await self._sha256(key, copied.get("CopyObjectResult", {})))

    async def _sha256(self, key: str, copy_result: dict[str, Any]) -> str:
        """S3 computes it while copying when it supports checksums; otherwise it is read through once."""
        checksum = copy_result.get("ChecksumSHA256")
        if checksum and copy_result.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            return base64.b64decode(checksum).hex()
        digest = hashlib.sha256()
        async for chunk in self.read(key):
            digest.update(chunk)
        return digest.hexdigest()

    async def uploads_before(self, before: datetime) -> list[str]:
        found: list[str] = []
        start = f"{self.prefix}uploads/"
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                if item["LastModified"] < before:
                    found.append(item["Key"].removeprefix(start))
        return found

    async def discard_upload(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.upload_key(key))

    # Multipart uploads from the client (files/uploads.py): the client PUTs each part straight to the bucket
    # with a pre-signed UploadPart URL; ListParts says what arrived; CompleteMultipartUpload joins them
    # in S3 (no byte passes through this process) at the upload key, and `take_upload` then moves the
    # result to the file's key and checks it, exactly as for a pre-signed PUT.
    async def start_parts(self, key: str) -> str | None:
        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=self.upload_key(key))
        upload_id: str = created["UploadId"]
        return upload_id

    async def presigned_part(
        self, key: str, upload_id: str | None, number: int, *, size: int, expires_at: datetime
    ) -> str | None:
        # Content-Length is signed: S3 refuses a part of another size.
        url: str = await self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self.upload_key(key),
                "UploadId": upload_id,
                "PartNumber": number,
                "ContentLength": size,
            },
            ExpiresIn=max(1, math.ceil((expires_at - utcnow()).total_seconds())),
        )
        return url

    async def part_writer(self, key: str, number: int) -> StorageWriter:
        raise PartsElsewhere()

    async def list_parts(self, key: str, upload_id: str | None) -> list[Part]:
        parts: list[Part] = []
        marker = 0
        while True:
            try:
                listed = await self.client.list_parts(
                    Bucket=self.bucket, Key=self.upload_key(key), UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _NO_UPLOAD:
                    return []
                raise
            parts += [Part(item["PartNumber"], item["Size"], item["ETag"]) for item in listed.get("Parts", [])]
            if not listed.get("IsTruncated"):
                return parts
            marker = int(listed["NextPartNumberMarker"])

    async def assemble(self, key: str, upload_id: str | None, parts: list[Part], head_size: int) -> DirectUpload:
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.upload_key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"ETag": part.etag, "PartNumber": part.number} for part in parts]},
        )
        taken = await self.take_upload(key, head_size)
        assert taken is not None  # just completed at the upload key
        return taken

    async def abort_parts(self, key: str, upload_id: str | None) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.upload_key(key), UploadId=upload_id)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in _NO_UPLOAD:
                raise

    async def parts_before(self, before: datetime) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        start = f"{self.prefix}uploads/"
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Uploads", []):
                if item["Initiated"] < before:
                    found.append((item["Key"].removeprefix(start), item["UploadId"]))
        return found
