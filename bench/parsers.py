"""What parsing a file in its own limited process costs: `uv run python bench/parsers.py`.

Agents parse customers' files in a child process forked from a fork server (agents/sandbox.py). This
script reads the same one-page text PDF --files times, --concurrency at once, two ways in the same
run: in a worker thread (`asyncio.to_thread`, how agents parsed before) as the baseline, then through
`run_isolated` with the default limits. It prints files per second and the mean time per file for
both, and their ratio. Needs the dev dependencies (fpdf2 makes the PDF).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from functools import partial

from fpdf import FPDF

from backplane.agents import sandbox
from backplane.agents.documents import parse_pdf
from backplane.core.config import Settings


def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in range(40):
        text = f"Line {line}: remote teams ship faster when they write things down."
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


async def _run(files: int, concurrency: int, parse: object) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await parse()  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(files)))
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    data = _pdf()
    settings = Settings()
    limits = sandbox.Limits(settings.agent_parser_cpu_seconds, settings.agent_parser_memory_mb * 1024 * 1024)
    await asyncio.to_thread(sandbox.start_fork_server)  # as the jobs worker does at start-up

    async def in_thread() -> None:
        await asyncio.to_thread(parse_pdf, data)

    async def isolated() -> None:
        await sandbox.run_isolated(partial(parse_pdf, data), limits=limits, subject="bench.pdf")

    await _run(10, args.concurrency, in_thread)  # warm both paths
    await _run(10, args.concurrency, isolated)
    baseline = await _run(args.files, args.concurrency, in_thread)
    measured = await _run(args.files, args.concurrency, isolated)
    print(f"{args.files} one-page PDFs, {args.concurrency} at once")
    for label, seconds in (("thread (baseline)", baseline), ("child process", measured)):
        print(f"  {label:18} {args.files / seconds:8.1f} files/s   {seconds / args.files * 1000:7.2f} ms/file")
    print(f"  ratio (child process / thread, time per file): {measured / baseline:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
