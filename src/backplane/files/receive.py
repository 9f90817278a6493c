"""Receiving an upload as it streams in: limits and type are enforced while the bytes arrive.

FastAPI's `UploadFile` would read the whole body before the handler runs; here the request
stream feeds python-multipart's push parser, the file part goes straight to storage, and the
upload is cut off (and its partial bytes deleted) the moment it crosses the size limit or its
first bytes show a type outside the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from backplane.core.errors import AppError, InvalidInput, PayloadTooLarge
from backplane.files.storage import Storage, StorageWriter
from backplane.files.types import HEAD_BYTES, FileType, detect

MAX_FIELD_BYTES = 64 * 1024  # each text field
MAX_FORM_FIELDS = 16  # text fields per form; file parts are counted by `max_files`
MULTIPART_OVERHEAD = 64 * 1024  # headers, boundaries and small fields around the file part


class UnsupportedFileType(AppError):
    status_code, code, title = 415, "UNSUPPORTED_FILE_TYPE", "Unsupported file type"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than the {limit // (1024 * 1024)} MB allowed here.", details={"max_bytes": limit}
    )


def unsupported(filename: str) -> UnsupportedFileType:
    return UnsupportedFileType(
        f"'{filename[:100]}' is not a supported file type. Accepted: PDF, DOCX, TXT, MD, CSV, MP3, MP4, "
        "WAV, PNG, JPG, TIFF, BMP (detected from the file's content, not its name or declared type)."
    )


@dataclass
class StoredFile:
    """What was received and stored (not yet committed to its key)."""

    file_id: str
    key: str
    filename: str
    file_type: FileType
    size: int
    sha256: str
    writer: StorageWriter


class _Sink:
    """One file's bytes on their way to storage: size cap, hash, and type from the first bytes."""

    def __init__(self, writer: StorageWriter, file_id: str, key: str, filename: str, limit: int) -> None:
        self.writer = writer
        self.file_id = file_id
        self.key = key
        self.filename = filename
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()
        self.head = b""
        self.file_type: FileType | None = None

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.limit)
        if self.file_type is None and len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
            if len(self.head) >= HEAD_BYTES:
                self._detect()
        self.hash.update(chunk)
        await self.writer.write(chunk)

    def _detect(self) -> None:
        self.file_type = detect(self.head, self.filename)
        if self.file_type is None:
            raise unsupported(self.filename)

    def finish(self) -> StoredFile:
        if self.size == 0:
            raise InvalidInput({"file": ["The file is empty."]})
        if self.file_type is None:
            self._detect()
        assert self.file_type is not None
        return StoredFile(
            self.file_id, self.key, self.filename, self.file_type, self.size, self.hash.hexdigest(), self.writer
        )


async def receive_raw(
    body: AsyncIterator[bytes], writer: StorageWriter, *, file_id: str, key: str, filename: str, limit: int
) -> StoredFile:
    """A raw (non-multipart) body, as PUT to a pre-signed upload URL."""
    sink = _Sink(writer, file_id, key, filename, limit)
    try:
        async for chunk in body:
            await sink.write(chunk)
        return sink.finish()
    except BaseException:
        await writer.abort()
        raise


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[StoredFile] = field(default_factory=list)
    _writers: list[StorageWriter] = field(default_factory=list)

    async def abort(self) -> None:
        """Delete every file this form stored (or was storing)."""
        for writer in self._writers:
            await writer.abort()


async def receive_multipart(
    content_type: str,
    body: AsyncIterator[bytes],
    storage: Storage,
    *,
    file_fields: set[str],
    new_file: Callable[[], tuple[str, str]],
    limit: int,
    max_files: int = 1,
) -> ReceivedForm:
    """Parse `multipart/form-data`, streaming each part named in `file_fields` into storage.

    `new_file()` names each stored file: (file id, storage key).
    """
    mime, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise InvalidInput({"file": ["Send the upload as multipart/form-data with a boundary."]})

    events: list[tuple[str, bytes]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(("header", bytes(header_field).lower() + b"\x00" + bytes(header_value)))
        header_field.clear()
        header_value.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": lambda: events.append(("begin", b"")),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": lambda: events.append(("headers", b"")),
            "on_part_data": lambda data, start, end: events.append(("data", bytes(data[start:end]))),
            "on_part_end": lambda: events.append(("end", b"")),
        },
    )
    form = ReceivedForm()
    sink: _Sink | None = None
    name = filename = ""
    value = bytearray()
    fields_seen = 0
    try:
        async for chunk in body:
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart's MultipartParseError and friends
                raise InvalidInput({"non_field_errors": [f"Malformed multipart body: {exc}"]}) from exc
            for kind, data in events:
                if kind == "begin":
                    name, filename, sink = "", "", None
                    value.clear()
                elif kind == "header":
                    header, _, raw = data.partition(b"\x00")
                    if header == b"content-disposition":
                        _, params = parse_options_header(raw)
                        name = params.get(b"name", b"").decode("utf-8", "replace")
                        filename = params.get(b"filename", b"").decode("utf-8", "replace")
                elif kind == "headers" and name not in file_fields:
                    fields_seen += 1
                    if fields_seen > MAX_FORM_FIELDS:
                        raise InvalidInput(
                            {"non_field_errors": [f"At most {MAX_FORM_FIELDS} form fields per request."]}
                        )
                elif kind == "headers":
                    if len(form._writers) >= max_files:
                        raise InvalidInput({name: [f"At most {max_files} file(s) per request."]})
                    file_id, key = new_file()
                    sink = _Sink(await storage.writer(key), file_id, key, filename or "upload", limit)
                    form._writers.append(sink.writer)
                elif kind == "data":
                    if sink is not None:
                        await sink.write(data)
                    else:
                        value.extend(data)
                        if len(value) > MAX_FIELD_BYTES:
                            raise InvalidInput({name or "field": [f"At most {MAX_FIELD_BYTES} bytes."]})
                elif kind == "end":
                    if sink is not None:
                        form.files.append(sink.finish())
                    elif name:
                        form.fields[name] = value.decode("utf-8", "replace")
                    sink = None
            events.clear()
        parser.finalize()
        return form
    except BaseException:
        await form.abort()
        raise
