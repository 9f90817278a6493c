"""Taylor on real documents made by the tests: a text PDF invoice, a scanned PNG, a scanned PDF."""

from __future__ import annotations

import pytest

from backplane.agents.base import AgentInputError
from backplane.agents.invoice import extract_invoice, parse_amount
from backplane.agents.taylor import Taylor, classify
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.files import samples as file_samples

EXPECTED_ITEMS = [
    {"description": "Website design", "amount": 1200.0, "quantity": 1.0, "unit_price": 1200.0},
    {"description": "Hosting plan", "amount": 300.0, "quantity": 12.0, "unit_price": 25.0},
    {"description": "Support hours", "amount": 400.0, "quantity": 5.0, "unit_price": 80.0},
]


def assert_invoice(data: dict, date: str = "2024-01-15") -> None:  # type: ignore[type-arg]
    assert data["invoice_number"] == samples.INVOICE_NUMBER
    assert data["date"] == date
    assert data["due_date"] == "2024-02-14"
    assert data["vendor"] == samples.VENDOR
    assert data["line_items"] == EXPECTED_ITEMS
    assert data["subtotal"] == samples.SUBTOTAL
    assert data["tax"] == samples.TAX
    assert data["total"] == samples.TOTAL
    assert data["currency"] == "USD"


async def test_text_pdf_invoice_is_read_from_its_text_layer(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"invoice.pdf": samples.invoice_pdf()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "invoice"})

    assert_invoice(output["extracted_data"])
    assert output["pages_processed"] == 1
    assert output["pages"][0]["method"] == "text"
    assert output["pages"][0]["file_id"] == "file_1"
    assert output["document_type"] == "invoice"
    assert output["validation"] == {
        "fields_found": ["invoice_number", "date", "vendor", "line_items", "total"],
        "fields_missing": [],
        "line_items_sum": 1900.0,
        "amounts_consistent": True,
    }
    assert output["confidence"] == 1.0  # every field, amounts agree, a text layer
    assert "Invoice Number: INV-2024-001" in output["text"]


async def test_scanned_png_invoice_is_read_by_ocr(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"scan.png": samples.scanned_png()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "form_data", "language": "auto"})

    data = output["extracted_data"]
    assert_invoice(data, date="2024-01-15")  # printed as "January 15, 2024"
    assert data["fields"]["Invoice Number"] == samples.INVOICE_NUMBER
    assert data["fields"]["Bill To"] == "Globex Inc"
    page = output["pages"][0]
    assert page["method"] == "ocr"
    assert 0.8 < page["ocr_confidence"] <= 1.0
    assert output["confidence"] == page["ocr_confidence"]  # every field, agreeing amounts, times Tesseract's own


async def test_scanned_pdf_page_without_text_layer_is_ocrd(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"scan.pdf": samples.scanned_pdf()})

    output = await run_agent(Taylor(), ctx, {}, {"extraction_type": "invoice"})  # as the guide's multipart sends it

    assert output["extraction_type"] == "invoice"
    assert output["pages"][0]["method"] == "ocr"
    assert_invoice(output["extracted_data"])


async def test_pages_of_several_files_are_one_document(make_ctx: MakeContext) -> None:
    lines = samples.invoice_lines()
    first = samples.invoice_pdf(lines=lines[:8])
    second = samples.invoice_pdf(lines=lines[8:])
    ctx = make_ctx({"document.pdf": first, "second_page.pdf": second})
    reported: list[tuple[float, str]] = []

    async def report(progress: float, message: str) -> None:
        reported.append((progress, message))

    ctx.report = report
    output = await run_agent(Taylor(), ctx, {"extraction_type": "invoice"})

    # What a caller watching the job (GET /v1/jobs/{id}/events) sees while it runs.
    assert reported == [
        (0.0, "reading file 1 of 2"),
        (0.45, "document.pdf: page 1 of 1 read"),
        (0.45, "reading file 2 of 2"),
        (0.9, "second_page.pdf: page 1 of 1 read"),
        (0.9, "2 pages read; extracting"),
    ]
    assert output["pages_processed"] == 2
    assert [(p["file_id"], p["page"]) for p in output["pages"]] == [("file_1", 1), ("file_2", 1)]
    assert_invoice(output["extracted_data"])


async def test_missing_fields_and_disagreeing_amounts_lower_the_confidence(make_ctx: MakeContext) -> None:
    lines = [line for line in samples.invoice_lines() if not line.startswith(("Invoice Number", "Subtotal"))]
    lines = [line.replace("Support hours 5 80.00 400.00", "Support hours 5 80.00 450.00") for line in lines]
    ctx = make_ctx({"invoice.pdf": samples.invoice_pdf(lines=lines)})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "invoice"})

    assert output["extracted_data"]["invoice_number"] is None
    assert output["validation"]["fields_missing"] == ["invoice_number"]
    assert output["validation"]["line_items_sum"] == 1950.0
    assert output["validation"]["amounts_consistent"] is False
    assert output["confidence"] == 0.64  # 4 of 5 fields x 0.8, no agreement


async def test_ocr_extraction_gives_text_and_pages_only(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"invoice.pdf": samples.invoice_pdf()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "ocr"})

    assert output["extracted_data"] == {}
    assert output["text"].splitlines()[0] == "Acme Corp"
    assert output["confidence"] == 1.0


async def test_classification(make_ctx: MakeContext) -> None:
    letter = ["Dear Ms. Jones,", "Thank you for your letter of March 3.", "Sincerely,", "Bob"]
    ctx = make_ctx({"letter.pdf": samples.invoice_pdf(lines=letter)})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "classification"})

    assert output["extracted_data"]["document_type"] == "letter"
    assert classify("\n".join(samples.invoice_lines()))[0] == "invoice"
    assert classify("nothing to see")[0] == "other"


async def test_unreadable_files_fail_as_input_errors(make_ctx: MakeContext) -> None:
    broken_pdf = samples.invoice_pdf()[:400]
    with pytest.raises(AgentInputError, match="PDF cannot be read"):
        await run_agent(Taylor(), make_ctx({"broken.pdf": broken_pdf}), {"extraction_type": "ocr"})

    with pytest.raises(AgentInputError, match="needs at least one file"):
        await run_agent(Taylor(), make_ctx(), {"extraction_type": "ocr"})

    blank = file_samples.png(40, 40)  # a red square: no text at all
    with pytest.raises(AgentInputError, match="No text was found"):
        await run_agent(Taylor(), make_ctx({"blank.png": blank}), {})

    with pytest.raises(AgentInputError, match="Taylor reads pdf"):
        await run_agent(Taylor(), make_ctx({"notes.txt": file_samples.text()}), {})


async def test_unavailable_ocr_language_is_refused(make_ctx: MakeContext) -> None:
    with pytest.raises(AgentInputError, match=r"OCR language klingon is not available; installed: .*eng"):
        await run_agent(Taylor(), make_ctx({"scan.png": samples.scanned_png()}), {"language": "klingon"})


async def test_max_pages_skips_the_rest(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"a.pdf": samples.invoice_pdf(), "b.pdf": samples.invoice_pdf()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "ocr"}, {"max_pages": 1})

    assert output["pages_processed"] == 1
    assert output["pages_skipped"] is True


def test_invoice_rules_on_other_layouts() -> None:
    text = "\n".join(
        [
            "Northwind Traders Ltd",
            "Tax Invoice",
            "Invoice #: 4471",
            "Date: 15.03.2024",
            "Item Amount",
            "Consulting € 1.250,00",
            "Travel € 99,50",
            "Grand Total € 1.349,50",
        ]
    )
    data = extract_invoice(text)
    assert data["invoice_number"] == "4471"
    assert data["date"] == "2024-03-15"
    assert data["vendor"] == "Northwind Traders Ltd"
    assert data["line_items"] == [
        {"description": "Consulting", "amount": 1250.0},
        {"description": "Travel", "amount": 99.5},
    ]
    assert data["total"] == 1349.5
    assert data["currency"] == "EUR"
    assert parse_amount("(12.00)") == -12
    assert parse_amount("abc") is None


async def test_an_image_too_large_to_read_is_refused_before_ocr(make_ctx: MakeContext) -> None:
    import io

    from PIL import Image

    from backplane.agents.base import AgentInputError
    from backplane.agents.taylor import Taylor

    buffer = io.BytesIO()
    Image.new("1", (2, 40000), 1).save(buffer, format="PNG")  # a strip that upscales to gigapixels
    ctx = make_ctx({"strip.png": buffer.getvalue()})
    agent = Taylor()
    with pytest.raises(AgentInputError, match="too large or too narrow to read"):
        await agent.run(ctx, agent.input_model.model_validate({}), agent.config_model.model_validate({}))
