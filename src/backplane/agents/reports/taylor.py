"""Taylor's extraction as CSV (RFC 4180, written by the csv module): one row per field or line item.

Columns: `record` (document, field, form_field, line_item, page), `name`, `value`, then the line-item
columns `description`, `quantity`, `unit_price`, `amount`. Numbers are written as numbers; a text
cell that a spreadsheet would run as a formula gets a leading apostrophe.

A `tables` extraction is the tables' rows instead, every table in one CSV: columns `table` (1, 2, ...,
in document order), `file_id`, `page`, then every table's header names in order of first appearance,
so tables with the same header (one table continued over pages) share their columns and a table's
cells stand under its own header names; a cell of a column its table has not is empty. A header cell
that is empty, repeated within its table, or one of the first three names becomes `column_N` or
`<name>_2`.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from backplane.agents.reports.text import as_dict, as_list

HEADER = ("record", "name", "value", "description", "quantity", "unit_price", "amount")
_DOCUMENT = ("extraction_type", "document_type", "pages_processed", "confidence")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?")  # "-12.50" is an amount, not a formula
TABLE_COLUMNS = ("table", "file_id", "page")


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
    return f"'{text}" if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text) else text


def _row(record: str, name: Any = "", value: Any = None, item: dict[str, Any] | None = None) -> list[Any]:
    item = item or {}
    return [
        record,
        _cell(name),
        _cell(value),
        *(_cell(item.get(k)) for k in ("description", "quantity", "unit_price", "amount")),
    ]


def _write(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return buffer.getvalue().encode()


def _column_names(header: list[Any]) -> list[str]:
    """A table's header as distinct column names, none of them one of TABLE_COLUMNS."""
    names: list[str] = []
    taken = set(TABLE_COLUMNS)
    for index, cell in enumerate(header, start=1):
        base = str(cell).strip() if cell is not None else ""
        name, suffix = base or f"column_{index}", 1
        while name in taken:
            suffix += 1
            name = f"{base or f'column_{index}'}_{suffix}"
        taken.add(name)
        names.append(name)
    return names


def render_tables_csv(output: dict[str, Any]) -> bytes:
    tables = [as_dict(t) for t in as_list(as_dict(output.get("extracted_data")).get("tables"))]
    named = [(table, _column_names(as_list(table.get("header")))) for table in tables]
    columns = list(dict.fromkeys(name for _, names in named for name in names))
    rows: list[list[Any]] = [[_cell(c) for c in (*TABLE_COLUMNS, *columns)]]
    for table, names in named:
        for row in as_list(table.get("rows")):
            cells = dict(zip(names, as_list(row), strict=False))
            rows.append([_cell(table.get(c)) for c in TABLE_COLUMNS] + [_cell(cells.get(column)) for column in columns])
    return _write(rows)


def render_csv(output: dict[str, Any]) -> bytes:
    if output.get("extraction_type") == "tables":
        return render_tables_csv(output)
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
    return _write(rows)
