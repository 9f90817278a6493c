"""Real files of each supported type, made here (no binary fixtures to trust)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path


def pdf() -> bytes:
    body = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    )
    return body + b"trailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image(format_name: str, pages: int = 1) -> bytes:
    """A small white image in `format_name` (Pillow); a TIFF may hold several pages."""
    from PIL import Image

    frames = [Image.new("L", (8, 8), 255) for _ in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=format_name, save_all=pages > 1, append_images=frames[1:])
    return buffer.getvalue()


def docx(text: str = "Invoice INV-2024-001") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "word/document.xml",
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
            f"<w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buffer.getvalue()


def mp3(frames: int = 20) -> bytes:
    id3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
    return id3 + frame * frames


def text() -> bytes:
    return "Plain text with ünïcode, enough to detect.\n".encode() * 10


def elf() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 2000


def stored_files(root: Path) -> list[Path]:
    """Every file under the storage root, temporary ones included (nothing partial may remain)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file())
