"""Files and web pages turned into text: txt, md, docx, pdf (with OCR for scanned pages), images, HTML.

Each reader keeps the structure the pipelines use: a title and sections of paragraphs under their
headings. PDFs go through pypdf (and, for tables, pdfplumber); a page without a text layer is
OCR'd from its embedded images with Tesseract (pytesseract drives the `tesseract` binary that
scripts/install-system-packages.sh installs). The main text of an HTML page comes from
readability-lxml (the article, without menus, footers and sidebars). Every reader is blocking, and
is given customers' files: agents call them through `AgentContext.parse`, in a child process with
CPU-time and memory limits (agents/sandbox.py). Readers of pages report each page done
(`parse_progress.page_done`), which the job's progress shows.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import docx
import lxml.html
import pdfplumber
import pypdf
import pytesseract
from lxml import etree
from markdown_it import MarkdownIt
from PIL import Image, UnidentifiedImageError
from pypdf.errors import PyPdfError
from readability import Document as Readability

from backplane.agents.base import AgentInputError
from backplane.agents.parse_progress import page_done
from backplane.agents.text import normalize

OCR_LANGUAGE = "eng"
_MIN_PAGE_TEXT = 16  # fewer characters than this on a PDF page: treat it as scanned and OCR it
_MIN_OCR_WIDTH = 1600  # narrower scans are upscaled first: Tesseract reads ~300 dpi text best
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCK_TAGS = {"p", "li", "blockquote", "pre", "td", "dd", "figcaption"}
# Bounds on what one hostile file can cost (memory, CPU): checked before the work, not after.
MAX_OCR_PIXELS = 60_000_000  # an A4 page at 600 dpi is 35 million
# Pillow refuses an image over this many pixels when it opens it, before decoding anything (its own
# default, 89 million with an error only at twice that, would decode a 170 megapixel bomb first).
# Its warning between the two is made an error in `open_image`.
Image.MAX_IMAGE_PIXELS = MAX_OCR_PIXELS
OCR_TIMEOUT_SECONDS = 120
MAX_TEXT_PAGES = 300  # PDF pages maya and sam read


@dataclass(slots=True)
class Section:
    heading: str | None
    paragraphs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    title: str | None
    sections: list[Section]
    images: list[str] = field(default_factory=list)  # absolute image URLs of a web page's article

    @property
    def paragraphs(self) -> list[str]:
        return [p for s in self.sections for p in s.paragraphs]

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


class _Builder:
    def __init__(self) -> None:
        self.sections: list[Section] = [Section(None)]

    def heading(self, text: str) -> None:
        text = normalize(text)
        if text:
            self.sections.append(Section(text))

    def paragraph(self, text: str) -> None:
        text = normalize(text)
        if text:
            self.sections[-1].paragraphs.append(text)

    def document(self, title: str | None, images: list[str] | None = None) -> Document:
        sections = [s for s in self.sections if s.paragraphs]
        return Document(title=normalize(title) if title else None, sections=sections, images=images or [])


def paragraphs_of(text: str) -> list[str]:
    """Blank-line separated paragraphs, each joined into one line (PDF and text files wrap lines)."""
    return [p for p in (normalize(block) for block in re.split(r"\n\s*\n", text)) if p]


def parse_plain(text: str) -> Document:
    """A text file: paragraphs at blank lines; a short first line without a full stop is its title."""
    builder = _Builder()
    paragraphs = paragraphs_of(text)
    title = None
    if paragraphs and len(paragraphs) > 1 and len(paragraphs[0]) <= 120 and paragraphs[0][-1] not in ".!?:":
        title = paragraphs.pop(0)
    for paragraph in paragraphs:
        builder.paragraph(paragraph)
    return builder.document(title)


def parse_markdown(text: str) -> Document:
    """Markdown through markdown-it: headings start sections, paragraphs and list items are paragraphs."""
    builder = _Builder()
    title: str | None = None
    tokens = MarkdownIt("commonmark").parse(text)
    for index, token in enumerate(tokens):
        if token.type != "inline":
            continue
        opener = tokens[index - 1].type if index else ""
        plain = "".join(
            child.content if child.type in {"text", "code_inline"} else " "
            for child in token.children or []
            if child.type in {"text", "code_inline", "softbreak", "hardbreak"}
        )
        if opener == "heading_open":
            if title is None and tokens[index - 1].tag == "h1":
                title = normalize(plain)
                continue
            builder.heading(plain)
        else:
            builder.paragraph(plain)
    return builder.document(title)


MAX_DOCX_UNPACKED = 200 * 1024 * 1024  # a zip bomb expands far beyond its upload size


def parse_docx(data: bytes) -> Document:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise AgentInputError("The DOCX file cannot be read (damaged or not a Word document).") from exc
    if unpacked > MAX_DOCX_UNPACKED:
        raise AgentInputError("The DOCX file unpacks to more than 200 MB; it is refused.")
    try:
        document = docx.Document(io.BytesIO(data))
    except etree.LxmlError as exc:
        if any(entry.type_name == "ERR_NO_MEMORY" for entry in exc.error_log):  # libxml2 hit the memory limit
            raise MemoryError("the DOCX file's XML does not fit in memory") from exc
        raise AgentInputError("The DOCX file cannot be read (damaged or not a Word document).") from exc
    except Exception as exc:  # python-docx raises zipfile and KeyError errors for broken files
        raise AgentInputError("The DOCX file cannot be read (damaged or not a Word document).") from exc
    builder = _Builder()
    title = document.core_properties.title or None
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style == "Title" or style.startswith("Heading"):
            if title is None and style in {"Title", "Heading 1"}:
                title = paragraph.text
                continue
            builder.heading(paragraph.text)
        else:
            builder.paragraph(paragraph.text)
    for table in document.tables:
        for row in table.rows:
            builder.paragraph(" ".join(cell.text for cell in row.cells))
    return builder.document(title)


def parse_html(html: str, base_url: str) -> Document:
    """The article of a web page (readability-lxml), its title, and its images' absolute URLs."""
    if not html.strip():
        raise AgentInputError(f"The page at {base_url} is empty.")
    try:
        readable = Readability(html, url=base_url)
        article = lxml.html.fromstring(readable.summary(html_partial=True))
        title = readable.short_title() or None
    except (etree.ParserError, ValueError) as exc:
        raise AgentInputError(f"The page at {base_url} is not readable HTML.") from exc
    builder = _Builder()
    for element in article.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _HEADING_TAGS:
            builder.heading(element.text_content())
        elif tag in _BLOCK_TAGS and not any(
            isinstance(a.tag, str) and a.tag in _BLOCK_TAGS for a in element.iterancestors()
        ):
            builder.paragraph(element.text_content())
    if not any(s.paragraphs for s in builder.sections):
        builder.paragraph(article.text_content())
    images = [urljoin(base_url, src) for src in article.xpath("//img/@src") if isinstance(src, str) and src.strip()]
    return builder.document(title, list(dict.fromkeys(images)))


@dataclass(slots=True)
class Table:
    header: list[str]  # the table's first row
    rows: list[list[str]]  # the others, each as wide as the header


@dataclass(slots=True)
class Page:
    number: int  # 1-based, within its file
    text: str
    method: str  # "text" (the PDF's own text layer) or "ocr"
    ocr_confidence: float | None = None  # Tesseract's mean word confidence, 0..1
    tables: list[Table] = field(default_factory=list)  # read from a text page when asked for


def ocr_image(image: Image.Image, language: str = OCR_LANGUAGE) -> tuple[str, float]:
    """The text Tesseract reads in `image` (lines kept) and its mean word confidence (0..1)."""
    if image.width * image.height > MAX_OCR_PIXELS or image.height > 50 * max(image.width, 1):
        raise AgentInputError(f"An image of {image.width}x{image.height} pixels is too large or too narrow to read.")
    image = image.convert("L")
    if image.width < _MIN_OCR_WIDTH:
        scale = _MIN_OCR_WIDTH / image.width
        image = image.resize((_MIN_OCR_WIDTH, round(image.height * scale)), Image.Resampling.LANCZOS)
    try:
        # psm 6 reads the page as one block, so a table row ("Design 2 50.00 100.00") stays on one line.
        # The timeout kills Tesseract itself: a thread cannot be cancelled, a subprocess can.
        data = pytesseract.image_to_data(
            image, lang=language, config="--psm 6", output_type=pytesseract.Output.DICT, timeout=OCR_TIMEOUT_SECONDS
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise RuntimeError("tesseract is not installed: run scripts/install-system-packages.sh") from exc
    except pytesseract.TesseractError as exc:
        raise AgentInputError(f"OCR failed on the image: {exc.message}") from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise AgentInputError(f"OCR of one image took longer than {OCR_TIMEOUT_SECONDS} s.") from exc
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for i, word in enumerate(data["text"]):
        word = word.strip()
        confidence = float(data["conf"][i])
        if not word or confidence < 0:
            continue
        lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(word)
        confidences.append(confidence)
    text = "\n".join(" ".join(ws) for _, ws in sorted(lines.items()))
    return text, (sum(confidences) / len(confidences) / 100 if confidences else 0.0)


def open_image(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        _check_size(image)
        image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise AgentInputError(_TOO_MANY_PIXELS) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise AgentInputError("The image cannot be read (damaged, unsupported or too large).") from exc
    return image


_TOO_MANY_PIXELS = f"The image has more than {MAX_OCR_PIXELS:,} pixels; it is refused."
_HEADER_FIRST = {"png", "bmp"}  # formats whose header always sits in a file's first bytes


def image_head_problem(head: bytes, size_bytes: int, type_name: str) -> str | None:
    """What a file's first bytes already show wrong with an image (no header, too many pixels, pixel data
    that would lie past the end of the file), or None. Headers only: nothing is decoded.

    A TIFF's directory, and a JPEG's frame header after large metadata, may lie beyond `head`: unless
    `head` is the whole file, such an image is left for the run to judge.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of bad EXIF in a cut-off head: no news here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(head))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return _TOO_MANY_PIXELS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        if size_bytes <= len(head) or type_name in _HEADER_FIRST:
            return "The image cannot be read (damaged, or not an image)."
        return None
    if image.width * image.height > MAX_OCR_PIXELS:
        return _TOO_MANY_PIXELS
    for decoder, box, offset, args in image.tile:
        stride = args[1] if decoder == "raw" and isinstance(args, tuple) and len(args) > 1 else 0
        rows = box[3] - box[1] if box else 0
        end = offset + max(1, stride * rows if isinstance(stride, int) else 0)  # uncompressed: stride x rows
        if end > size_bytes:
            return f"The image is cut short: its pixels need {end:,} bytes and the file has {size_bytes:,}."
    return None


def _check_size(image: Image.Image) -> None:
    """Refuse a frame by its declared size, before it is decoded (Pillow checks only the first frame)."""
    if image.width * image.height > MAX_OCR_PIXELS:
        raise AgentInputError(_TOO_MANY_PIXELS)


def read_image(data: bytes, language: str = OCR_LANGUAGE, max_pages: int | None = None) -> tuple[list[Page], int]:
    """An image file's frames (a TIFF may hold several pages), each OCR'd, at most `max_pages` of them, and
    its frame count."""
    image = open_image(data)
    pages = []
    frames = getattr(image, "n_frames", 1)
    count = min(frames, max_pages) if max_pages is not None else frames
    for number in range(count):
        try:
            image.seek(number)
        except (EOFError, OSError) as exc:  # a frame the header lists but the file does not hold
            raise AgentInputError(f"Page {number + 1} of the image cannot be read (damaged file).") from exc
        _check_size(image)
        text, confidence = ocr_image(image.copy(), language)
        pages.append(Page(number + 1, text, "ocr", confidence))
        page_done(number + 1, count)
    return pages, frames


def pdf_reader(data: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise AgentInputError("The PDF is password-protected.")
        _ = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise AgentInputError("The PDF cannot be read (damaged or not a PDF).") from exc
    return reader


def _page_images(page: pypdf.PageObject) -> Iterable[Image.Image]:
    try:
        for item in page.images:
            if item.image is not None:
                yield item.image
    except (PyPdfError, ValueError, KeyError, OSError, NotImplementedError):
        return  # an image pypdf cannot decode is skipped; the page may still have others or text


def read_pdf(
    data: bytes | pypdf.PdfReader,
    *,
    language: str = OCR_LANGUAGE,
    max_pages: int | None = None,
    tables: bool = False,
) -> tuple[list[Page], int]:
    """A PDF's pages (text layer, or OCR of the page's images when it has none) and its page count;
    with `tables`, each text page's tables too (see `read_tables`)."""
    reader = data if isinstance(data, pypdf.PdfReader) else pdf_reader(data)
    total = len(reader.pages)
    wanted = reader.pages[:max_pages] if max_pages is not None else reader.pages
    plumber = _plumber(data) if tables and isinstance(data, bytes) else None
    pages: list[Page] = []
    try:
        for number, page in enumerate(wanted, start=1):
            pages.append(_read_page(number, page, language))
            if plumber is not None and pages[-1].method == "text":
                pages[-1].tables = read_tables(plumber.pages[number - 1])
            page_done(number, len(wanted))
    finally:
        if plumber is not None:
            plumber.close()
    return pages, total


def _read_page(number: int, page: pypdf.PageObject, language: str) -> Page:
    try:
        text = page.extract_text() or ""
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise AgentInputError(f"Page {number} of the PDF cannot be read.") from exc
    if len(text.strip()) >= _MIN_PAGE_TEXT:
        return Page(number, text, "text")
    read = [ocr_image(image, language) for image in _page_images(page)]
    if read:
        confidence = sum(c for _, c in read) / len(read)
        return Page(number, "\n\n".join(t for t, _ in read), "ocr", confidence)
    return Page(number, text, "text")


def _plumber(data: bytes) -> pdfplumber.PDF:
    try:
        return pdfplumber.open(io.BytesIO(data))
    except (MemoryError, RecursionError):
        raise  # the sandbox says which limit the file crossed
    except Exception as exc:  # pdfminer's errors share no base class (PDFSyntaxError, PSEOF, ValueError...)
        raise AgentInputError("The PDF's tables cannot be read (damaged PDF).") from exc


def _cell(value: str | None) -> str:
    return " ".join((value or "").split())  # a cell's wrapped lines are one line


def read_tables(page: pdfplumber.page.Page) -> list[Table]:
    """The tables pdfplumber finds on a text page by their ruling lines (cell borders), first row as header.

    A "table" of one row or one column is a bordered box or a rule, not a table, and is left out; so are
    rows with every cell empty. Rows shorter than the header are padded.
    """
    try:
        found = page.extract_tables()
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # as in _plumber
        raise AgentInputError(f"The tables on page {page.page_number} of the PDF cannot be read.") from exc
    finally:
        page.close()  # pdfplumber keeps every page's layout objects until told otherwise
    tables = []
    for raw in found:
        rows = [[_cell(c) for c in row] for row in raw if any(_cell(c) for c in row)]
        width = max((len(row) for row in rows), default=0)
        if len(rows) < 2 or width < 2:
            continue
        rows = [row + [""] * (width - len(row)) for row in rows]
        tables.append(Table(header=rows[0], rows=rows[1:]))
    return tables


def parse_pdf(data: bytes, max_pages: int = MAX_TEXT_PAGES) -> Document:
    reader = pdf_reader(data)
    pages, _ = read_pdf(reader, max_pages=max_pages)
    builder = _Builder()
    for page in pages:
        for paragraph in paragraphs_of(page.text):
            builder.paragraph(paragraph)
    try:
        title = reader.metadata.title if reader.metadata is not None else None
    except (PyPdfError, ValueError, KeyError, TypeError):
        title = None  # unreadable metadata is no reason to refuse the text
    return builder.document(title or None)


def parse_file(type_name: str, data: bytes) -> Document:
    """A file of one of the types the text agents take (txt, md, docx, pdf)."""
    if type_name == "pdf":
        return parse_pdf(data)
    if type_name == "docx":
        return parse_docx(data)
    text = data.decode("utf-8", errors="replace")
    return parse_markdown(text) if type_name == "md" else parse_plain(text)
