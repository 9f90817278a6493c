"""What reading a PDF's tables costs taylor: `uv run python bench/taylor_tables.py`.

Makes a text PDF of --pages pages, each one ruled table of --rows rows (ReportLab), and reads it in
this process the way taylor's parser does (`read_pdf`), without tables and then with them. Prints the
CPU time per page of each: the parser's AGENT_PARSER_CPU_SECONDS is CPU time per file.
"""

from __future__ import annotations

import argparse
import io
import time

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.platypus import Flowable, PageBreak, SimpleDocTemplate, Table, TableStyle

from backplane.agents.documents import read_pdf


def _pdf(pages: int, rows: int) -> bytes:
    cells = [["SKU", "Product", "Qty", "Unit price"]]
    cells += [[f"A-{i}", f"Item {i}", str(i), f"{i}.50"] for i in range(rows)]
    story: list[Flowable] = []
    for number in range(pages):
        table = Table(cells)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
        story += [PageBreak(), table] if number else [table]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4).build(story)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--rows", type=int, default=30)
    args = parser.parse_args()
    data = _pdf(args.pages, args.rows)
    for tables in (False, True):
        started = time.process_time()
        pages, count = read_pdf(data, tables=tables)
        spent = time.process_time() - started
        found = sum(len(page.tables) for page in pages)
        print(f"tables={tables}: {count} pages, {spent:.2f} s CPU, {spent / count * 1000:.0f} ms/page, {found} tables")


if __name__ == "__main__":
    main()
