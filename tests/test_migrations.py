"""The Alembic migrations match the models exactly, and run both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table

from backplane.cli import _alembic_config
from backplane.models import metadata
from tests.fixtures import database


async def _compare(database_url: str, target: MetaData) -> list[object]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: list(compare_metadata(MigrationContext.configure(sync), target))
            )
    finally:
        await engine.dispose()


async def test_migrated_schema_has_no_drift_from_the_models(database_url: str) -> None:
    assert await _compare(database_url, metadata) == []


async def test_drift_would_be_detected(database_url: str) -> None:
    """The comparison above can fail: a model change without a migration shows up."""
    drifted = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    diff = await _compare(database_url, drifted)
    assert any(op[0] == "add_table" and op[1].name == "not_migrated" for op in diff)  # type: ignore[index]


@pytest.fixture
def scratch_database() -> Iterator[str]:
    url = database.new_database_url()
    yield url
    database.drop(url)


def test_alembic_check_and_downgrade_round_trip(scratch_database: str) -> None:
    database.create_and_migrate(scratch_database)
    config = _alembic_config(scratch_database)
    config.attributes["configure_logging"] = False
    command.check(config)  # raises if autogenerate would emit anything
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
