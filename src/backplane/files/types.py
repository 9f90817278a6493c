"""The file types the agents take (the platform guide's table), detected from a file's own bytes."""

from __future__ import annotations

from dataclasses import dataclass

import filetype

from backplane.billing.plans import MB


@dataclass(frozen=True, slots=True)
class FileType:
    name: str
    content_type: str


TYPES: dict[str, FileType] = {
    t.name: t
    for t in (
        FileType("pdf", "application/pdf"),
        FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        FileType("txt", "text/plain"),
        FileType("md", "text/markdown"),
        FileType("csv", "text/csv"),
        FileType("mp3", "audio/mpeg"),
        FileType("mp4", "video/mp4"),
        FileType("wav", "audio/wav"),
        FileType("png", "image/png"),
        FileType("jpg", "image/jpeg"),
        FileType("tiff", "image/tiff"),
        FileType("bmp", "image/bmp"),
    )
}

# A stored file's content type -> its type (files keep the content type their bytes were detected as).
BY_CONTENT_TYPE: dict[str, FileType] = {t.content_type: t for t in TYPES.values()}

# Agent -> (types it takes, largest file), from the guide's Supported File Types table.
AGENT_FILES: dict[str, tuple[frozenset[str], int]] = {
    "maya": (frozenset({"pdf", "docx", "txt", "md", "mp3", "mp4", "wav"}), 100 * MB),
    "jordan": (frozenset({"txt", "md", "csv"}), 10 * MB),  # csv: engagement_analytics' metrics export
    "sam": (frozenset({"pdf", "docx", "csv"}), 50 * MB),
    "taylor": (frozenset({"pdf", "png", "jpg", "tiff", "bmp"}), 100 * MB),
}

# filetype's extension -> ours; anything else it recognises (exe, elf, zip, ...) is refused.
_BINARY = {
    "pdf": "pdf",
    "docx": "docx",
    "mp3": "mp3",
    "mp4": "mp4",
    "wav": "wav",
    "png": "png",
    "jpg": "jpg",
    "tif": "tiff",
    "bmp": "bmp",
}
HEAD_BYTES = 8192  # enough for every signature above (docx needs the zip's first entries)


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def detect(head: bytes, filename: str) -> FileType | None:
    """The file's type from its first bytes (the name only tells text formats apart), or None."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        name = _BINARY.get(kind.extension)
        return TYPES[name] if name else None
    if not head or not _is_text(head):
        return None
    lowered = filename.lower()
    if lowered.endswith((".md", ".markdown")):
        return TYPES["md"]
    if lowered.endswith(".csv"):
        return TYPES["csv"]
    return TYPES["txt"]
