"""What autovacuum would have done between two phases of a benchmark, on a PostgreSQL that runs without it.

This machine's PostgreSQL runs with `autovacuum = off` (`SHOW autovacuum`). A phase that updates rows
many times (a delivery or a job goes through several statuses) then leaves every dead version behind
for the next phase to walk past, and no table is ever analyzed: the plans a worker's connections
prepared while a table was nearly empty (a sequential scan is the cheapest plan for a few pages) stay
cached for the connection's life, and turn into full scans once the table has grown. One fresh
database's webhook run showed about 2,000 such scans of `webhook_deliveries` (24 million rows read),
and each burst phase slower than the one before. A production PostgreSQL cleans and re-analyzes such
tables on its own (which also makes the connections plan their statements again), so the benchmarks
do it before each phase when autovacuum is off, outside the time they measure.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def autovacuum_is_on(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        return (await connection.scalar(text("SHOW autovacuum"))) == "on"


async def tidy(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """VACUUM (ANALYZE) these tables (names from the benchmark itself, never from input)."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
