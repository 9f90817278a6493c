"""Taylor: text and structured data from PDFs and images.

Every file of the job is read as pages of one document, in order (the guide uploads
`document.pdf` and `second_page.pdf` together): a PDF page's own text layer through pypdf, or, for
a scanned page without one, Tesseract OCR of the page's images; image files (png, jpg, tiff, bmp)
through Tesseract (every frame of a multi-page TIFF is a page). The job's progress goes page by page.
Then, by `extraction_type`:
- `ocr` / `text`: the text and pages only.
- `tables`: the tables of text PDF pages (pdfplumber, by their ruling lines), each with its page, header
  and rows. Tables are found in text layers only: a scanned page gives its OCR text and no tables
  (borderless tables and tables in scans are a known limit, not detected).
- `invoice`: invoice fields (invoice.py) with a confidence.
- `form_data`: "Label: value" fields, plus the invoice fields when the document is an invoice.
- `classification`: the document type (invoice, receipt, contract, resume, letter, form) by keyword scores.
`confidence` is the text's quality (1.0 for a text layer, Tesseract's mean word confidence for
OCR) times, for invoices, how complete and consistent the fields are (invoice.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any, Literal

import pytesseract
from pydantic import Field

from backplane.agents.base import Agent, AgentContext, AgentInputError, AgentModel, FieldErrors, InputFile
from backplane.agents.documents import OCR_LANGUAGE, Page, image_head_problem, read_image, read_pdf
from backplane.agents.invoice import extract_invoice, invoice_checks, invoice_confidence
from backplane.agents.reports import taylor as reports
from backplane.files.types import AGENT_FILES

ExtractionType = Literal["ocr", "text", "invoice", "form_data", "classification", "tables"]
_LANGUAGES = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por", "nl": "nld"}
_KINDS: dict[str, tuple[str, ...]] = {
    "invoice": ("invoice", "bill to", "amount due", "subtotal", "due date", "invoice number", "qty", "unit price"),
    "receipt": ("receipt", "cash", "change", "card ending", "thank you for your purchase", "transaction"),
    "contract": ("agreement", "parties", "hereby", "terms and conditions", "witness", "governing law"),
    "resume": ("experience", "education", "skills", "curriculum vitae", "resume", "references"),
    "letter": ("dear", "sincerely", "regards", "yours faithfully", "yours truly"),
    "form": ("please print", "signature", "date of birth", "applicant", "check one", "form"),
}
_IMAGES = frozenset({"png", "jpg", "tiff", "bmp"})
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9 /#().'-]{0,40}?)\s*:\s*(\S.*)$")


class TaylorInput(AgentModel):
    extraction_type: ExtractionType | None = Field(
        default=None,
        description="What to extract: ocr (text only), invoice, form_data, classification, tables (the tables of "
        "text PDFs: page, header, rows). May be given in config instead (the guide's multipart example does); "
        "default ocr.",
        examples=["form_data"],
    )
    language: str = Field(
        default="auto",
        max_length=40,
        description="Tesseract language(s), e.g. eng or eng+deu; auto means English.",
        examples=["auto"],
    )


class TaylorConfig(AgentModel):
    extraction_type: ExtractionType | None = Field(default=None, description="Used when the input names none.")
    language: str | None = Field(default=None, max_length=40)
    max_pages: int = Field(default=200, ge=1, le=2000, description="Pages read across all files; the rest are skipped.")


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    return frozenset(pytesseract.get_languages(config=""))


def _tesseract_language(requested: str) -> str:
    if requested.lower() in {"", "auto"}:
        return OCR_LANGUAGE
    parts = [_LANGUAGES.get(p.strip().lower(), p.strip().lower()) for p in requested.split("+")]
    missing = [p for p in parts if p not in installed_languages()]
    if missing:
        installed = ", ".join(sorted(installed_languages()))
        raise AgentInputError(f"OCR language {', '.join(missing)} is not available; installed: {installed}.")
    return "+".join(parts)


def classify(text: str) -> tuple[str, dict[str, int]]:
    """The document type whose keywords occur most often (ties: the earlier type), or "other"."""
    lowered = text.lower()
    scores = {kind: sum(lowered.count(k) for k in keys) for kind, keys in _KINDS.items()}
    best = max(scores, key=lambda k: scores[k])
    return (best if scores[best] > 0 else "other"), scores


def form_fields(text: str) -> dict[str, str]:
    """ "Label: value" lines as a mapping (the first value of a repeated label wins)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line.strip())
        if match:
            fields.setdefault(match.group(1).strip(), match.group(2).strip())
    return fields


class Taylor(Agent):
    id = "taylor"
    name = "Taylor - Document Processor"
    description = (
        "Reads PDFs and images, multi-page TIFFs included (text layer or Tesseract OCR), and extracts text, "
        "invoice fields (number, date, vendor, line items, total) with a confidence, form fields, the tables "
        "of text PDFs, or the document type."
    )
    input_model = TaylorInput
    config_model = TaylorConfig
    file_types, max_file_bytes = AGENT_FILES["taylor"]
    output_formats = ("json", "csv")
    inspected_types = _IMAGES  # a damaged image's header shows in its first bytes

    def check_input(self, input: TaylorInput, config: TaylorConfig, files: Sequence[InputFile]) -> FieldErrors:
        if not files:
            return {"file_ids": ["Taylor needs at least one file (file_ids or an upload)."]}
        errors: FieldErrors = {}
        for index, file in enumerate(files):
            if file.head is not None and (problem := image_head_problem(file.head, file.size_bytes, file.type_name)):
                errors[f"file_ids.{index}"] = [f"{file.filename}: {problem}"]
        return errors

    def render(self, format_name: str, output: dict[str, Any]) -> bytes:
        return reports.render_csv(output)

    async def run(self, ctx: AgentContext, input: TaylorInput, config: TaylorConfig) -> dict[str, Any]:
        if not ctx.files:
            raise AgentInputError("Taylor needs at least one file (file_ids or an upload).")
        kind: ExtractionType = input.extraction_type or config.extraction_type or "ocr"
        language = _tesseract_language(
            config.language if input.language == "auto" and config.language else input.language
        )
        pages: list[tuple[str, Page]] = []
        skipped = False
        files = len(ctx.files)
        for number, file in enumerate(ctx.files):
            if file.type_name not in self.file_types:
                raise AgentInputError(f"{file.filename}: Taylor reads pdf, png, jpg, tiff and bmp files.")
            await ctx.progress(0.9 * number / files, f"reading file {number + 1} of {files}")
            remaining = config.max_pages - len(pages)
            if remaining <= 0:
                skipped = True
                continue
            content = await ctx.read_file(file)

            async def page_read(done: int, total: int, number: int = number, name: str = file.filename) -> None:
                await ctx.progress(0.9 * (number + done / total) / files, f"{name}: page {done} of {total} read")

            if file.type_name == "pdf":
                reading = partial(read_pdf, content, language=language, max_pages=remaining, tables=kind == "tables")
            else:
                reading = partial(read_image, content, language, remaining)
            read, count = await ctx.parse(reading, subject=file.filename, on_pages=page_read)
            skipped = skipped or count > len(read[:remaining])
            pages += [(file.id, page) for page in read[:remaining]]
        await ctx.progress(0.9, f"{len(pages)} page{'s' if len(pages) != 1 else ''} read; extracting")
        text = "\n\n".join(page.text.strip() for _, page in pages if page.text.strip())
        tables = [
            {"file_id": file_id, "page": page.number, "header": table.header, "rows": table.rows}
            for file_id, page in pages
            for table in page.tables
        ]
        if not text:
            raise AgentInputError("No text was found in the files (blank pages or unreadable scans).")
        quality = sum(p.ocr_confidence if p.ocr_confidence is not None else 1.0 for _, p in pages) / len(pages)
        document_type, scores = classify(text)
        output: dict[str, Any] = {
            "extraction_type": kind,
            "document_type": document_type,
            "text": text,
            "pages": [
                {
                    "file_id": file_id,
                    "page": page.number,
                    "method": page.method,
                    "ocr_confidence": round(page.ocr_confidence, 2) if page.ocr_confidence is not None else None,
                    "text": page.text,
                    **({"tables": len(page.tables)} if kind == "tables" else {}),
                }
                for file_id, page in pages
            ],
            "pages_processed": len(pages),
            "pages_skipped": skipped,  # more pages than config.max_pages
            "confidence": round(quality, 2),
        }
        if kind in {"invoice", "form_data"}:
            data = extract_invoice(text) if kind == "invoice" or document_type == "invoice" else {}
            if data:
                checks = invoice_checks(data)
                output["validation"] = checks
                output["confidence"] = invoice_confidence(checks, quality)
            if kind == "form_data":
                fields = form_fields(text)
                data = {**data, "fields": fields}
                if document_type != "invoice":
                    output["confidence"] = round(quality if fields else 0.0, 2)
            output["extracted_data"] = data
        elif kind == "tables":
            output["extracted_data"] = {"tables": [{"table": n, **t} for n, t in enumerate(tables, start=1)]}
        elif kind == "classification":
            output["extracted_data"] = {"document_type": document_type, "keyword_scores": scores}
        else:
            output["extracted_data"] = {}
        return output
