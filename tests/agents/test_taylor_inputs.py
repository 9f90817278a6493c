"""Taylor's tables in text PDFs (JSON and CSV) and its TIFF/BMP inputs, on documents the tests make."""

from __future__ import annotations

import csv
import io

import pytest

from backplane.agents.base import AgentInputError, InputFile
from backplane.agents.documents import image_head_problem
from backplane.agents.taylor import Taylor
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.jobs.hostile_files import blank_png

TIFF_PAGES = [["Delivery note 4471", "Pallets received: 12"], ["Signed by Margot Keller", "Warehouse Fernwood"]]


def _csv(output: dict) -> list[dict[str, str]]:  # type: ignore[type-arg]
    rendered = Taylor().render("csv", output).decode()
    assert "\r\n" in rendered  # RFC 4180 line ends
    return list(csv.DictReader(io.StringIO(rendered, newline="")))


async def test_tables_of_a_text_pdf_come_out_with_page_header_and_rows(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"stock.pdf": samples.table_pdf()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "tables"})

    assert output["extracted_data"]["tables"] == [
        {
            "table": 1,
            "file_id": "file_1",
            "page": 1,
            "header": samples.STOCK_TABLE[0],
            "rows": samples.STOCK_TABLE[1:],
        },
        {
            "table": 2,
            "file_id": "file_1",
            "page": 2,
            "header": samples.REGION_TABLE[0],
            "rows": samples.REGION_TABLE[1:],
        },
    ]
    assert [(p["page"], p["method"], p["tables"]) for p in output["pages"]] == [(1, "text", 1), (2, "text", 1)]
    assert "Quarterly stock report" in output["text"]


async def test_tables_csv_puts_each_table_under_its_own_header_names(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"stock.pdf": samples.table_pdf()})
    output = await run_agent(Taylor(), ctx, {"extraction_type": "tables"})

    rows = _csv(output)

    assert list(rows[0]) == ["table", "file_id", "page", "SKU", "Product", "Qty", "Unit price", "Region", "Sales"]
    stock = [r for r in rows if r["table"] == "1"]
    assert [[r[c] for c in samples.STOCK_TABLE[0]] for r in stock] == samples.STOCK_TABLE[1:]  # "-4.00" kept as is
    assert {r["Region"] for r in stock} == {""}
    regions = [(r["page"], r["Region"], r["Sales"]) for r in rows if r["table"] == "2"]
    assert regions == [("2", "North", "1,200"), ("2", "South", "800")]
    assert len(rows) == 4


def test_tables_csv_names_empty_repeated_and_reserved_header_cells() -> None:
    output = {
        "extraction_type": "tables",
        "extracted_data": {
            "tables": [
                {
                    "table": 1,
                    "file_id": "f",
                    "page": 3,
                    "header": ["Page", "page", "", "x", "x"],
                    "rows": [list("abcde")],
                },
                {"table": 2, "file_id": "f", "page": 4, "header": ["=cmd()", "x"], "rows": [["=1+1", "y"]]},
            ]
        },
    }
    rendered = Taylor().render("csv", output).decode()
    header, first, second = list(csv.reader(io.StringIO(rendered, newline="")))

    assert header == ["table", "file_id", "page", "Page", "page_2", "column_3", "x", "x_2", "'=cmd()"]
    assert first == ["1", "f", "3", "a", "b", "c", "d", "e", ""]
    assert second == ["2", "f", "4", "", "", "", "y", "", "'=1+1"]  # a formula is never run


async def test_a_scanned_pdf_has_no_tables_but_its_ocr_text(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"scan.pdf": samples.scanned_pdf()})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "tables"})

    assert output["pages"][0]["method"] == "ocr"
    assert output["extracted_data"] == {"tables": []}
    assert "Website design" in output["text"]
    assert _csv(output) == []  # the header line only


async def test_every_page_of_a_multipage_tiff_is_read_and_reported(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"delivery.tiff": samples.tiff_pages(TIFF_PAGES)})
    reported: list[tuple[float, str]] = []

    async def report(progress: float, message: str) -> None:
        reported.append((progress, message))

    ctx.report = report
    output = await run_agent(Taylor(), ctx, {"extraction_type": "form_data"})

    assert ctx.files[0].content_type == "image/tiff"
    assert [(p["page"], p["method"]) for p in output["pages"]] == [(1, "ocr"), (2, "ocr")]
    assert "Delivery note 4471" in output["pages"][0]["text"]
    assert "Margot Keller" in output["pages"][1]["text"] and "Margot" not in output["pages"][0]["text"]
    assert output["extracted_data"]["fields"]["Pallets received"] == "12"
    assert reported == [
        (0.0, "reading file 1 of 1"),
        (0.45, "delivery.tiff: page 1 of 2 read"),
        (0.9, "delivery.tiff: page 2 of 2 read"),
        (0.9, "2 pages read; extracting"),
    ]
    pages = [r for r in _csv(output) if r["record"] == "form_field"]
    assert {(r["name"], r["value"]) for r in pages} >= {("Pallets received", "12")}


async def test_a_bmp_is_read_by_ocr_and_its_text_is_in_the_csv(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"note.bmp": samples.bmp_page(["Parcel 7731 for Aurelio Bassi"])})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "ocr"})

    assert ctx.files[0].content_type == "image/bmp"
    assert output["pages"][0]["method"] == "ocr"
    assert "Parcel 7731 for Aurelio Bassi" in output["text"]
    [page] = [r for r in _csv(output) if r["record"] == "page"]
    assert "Aurelio Bassi" in page["value"]


async def test_max_pages_stops_inside_a_tiff(make_ctx: MakeContext) -> None:
    ctx = make_ctx({"delivery.tiff": samples.tiff_pages(TIFF_PAGES)})

    output = await run_agent(Taylor(), ctx, {"extraction_type": "ocr"}, {"max_pages": 1})

    assert output["pages_processed"] == 1 and output["pages_skipped"] is True
    assert "Margot" not in output["text"]


def _input(name: str, data: bytes, type_name: str) -> InputFile:
    return InputFile("file_1", name, type_name, len(data), data[: 64 * 1024])


@pytest.mark.parametrize(
    ("name", "data", "type_name", "problem"),
    [
        ("note.bmp", samples.bmp_page(["x"])[:30_000], "bmp", "The image is cut short: its pixels need 369,078 bytes"),
        ("note.bmp", b"BM" + b"\x00" * 100, "bmp", "The image cannot be read (damaged, or not an image)."),
        ("scan.tiff", b"II*\x00" + b"\xff" * 200, "tiff", "The image cannot be read (damaged, or not an image)."),
        ("scan.png", samples.scanned_png()[:40], "png", "The image cannot be read (damaged, or not an image)."),
    ],
    ids=["cut-off-bmp", "bmp-without-header", "tiff-without-directory", "png-without-header"],
)
def test_a_damaged_image_is_refused_at_creation_naming_the_file(
    name: str, data: bytes, type_name: str, problem: str
) -> None:
    agent = Taylor()
    errors = agent.check_input(
        agent.input_model.model_validate({}), agent.config_model.model_validate({}), [_input(name, data, type_name)]
    )
    assert list(errors) == ["file_ids.0"]
    assert errors["file_ids.0"][0].startswith(f"{name}: {problem}")


def test_sound_images_and_undecidable_heads_pass_at_creation() -> None:
    tiff = samples.tiff_pages(TIFF_PAGES)
    assert image_head_problem(tiff, len(tiff), "tiff") is None
    bmp = samples.bmp_page(["x"])
    assert image_head_problem(bmp[:65536], len(bmp), "bmp") is None  # the head of a whole file
    # A TIFF whose directory lies past the first bytes read: only the run can tell.
    assert image_head_problem(b"II*\x00" + b"\x00\x00\x10\x00" + b"\x00" * 65528, 2_000_000, "tiff") is None


async def test_an_image_bomb_that_reached_the_run_is_refused_before_it_is_decoded(make_ctx: MakeContext) -> None:
    bomb = blank_png(11_000, 11_000)  # 121 megapixels, which job creation refuses from the header already

    with pytest.raises(AgentInputError, match="The image has more than 60,000,000 pixels"):
        await run_agent(Taylor(), make_ctx({"bomb.png": bomb}), {})
