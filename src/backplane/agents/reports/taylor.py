"""Taylor's extraction as CSV (RFC 4180, written by the csv module): one row per field or line item.

Columns: `record` (document, field, form_field, line_item, page), `name`, `value`, then the line-item
columns `description`, `quantity`, `unit_price`, `amount`. Numbers are written as numbers; a text
cell that a spreadsheet would run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from backplane.agents.reports.text import as_dict, as_list

HEADER = ("record", "name", "value", "description", "quantity", "unit_price", "amount")
_DOCUMENT = ("extraction_type", "document_type", "pages_processed", "confidence")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    # CSV injection: a cell opened by a spreadsheet and starting like a formula would run. No library
    # does this for the csv module; the apostrophe is the guard spreadsheets themselves document.
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _row(record: str, name: Any = "", value: Any = None, item: dict[str, Any] | None = None) -> list[Any]:
    item = item or {}
    return [
        record,
        _cell(name),
        _cell(value),
        *(_cell(item.get(k)) for k in ("description", "quantity", "unit_price", "amount")),
    ]


def render_csv(output: dict[str, Any]) -> bytes:
    rows: list[list[Any]] = [list(HEADER)]
    rows += [_row("document", key, output.get(key)) for key in _DOCUMENT if key in output]
    data = as_dict(output.get("extracted_data"))
    for key, value in data.items():
        if key == "line_items":
            rows += [_row("line_item", item=as_dict(item)) for item in as_list(value)]
        elif key == "fields":
            rows += [_row("form_field", label, field) for label, field in as_dict(value).items()]
        elif isinstance(value, dict):
            rows += [_row("field", f"{key}.{name}", inner) for name, inner in value.items()]
        elif not isinstance(value, list):
            rows.append(_row("field", key, value))
    if not data:  # text only (ocr): the pages' text
        for page in (as_dict(p) for p in as_list(output.get("pages"))):
            rows.append(
                _row("page", f"{page.get('file_id', '')} page {page.get('page', '')}".strip(), page.get("text"))
            )
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return buffer.getvalue().encode()
