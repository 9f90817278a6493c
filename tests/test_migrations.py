"""The Alembic migrations match the models exactly, and run both ways."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.engine import make_url

from backplane.cli import AUTOVACUUM_OFF, _alembic_config, check_autovacuum, create_database_if_missing
from backplane.core.config import get_settings
from backplane.core.crypto import Encryptor
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


BEFORE_ENCRYPTION = "f859f3328e8a"  # the revision before webhook secrets were encrypted


@pytest.fixture
def encryption_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[bytes]:
    """ENCRYPTION_KEYS as the migration reads it: from the environment, through get_settings()."""
    key = Fernet.generate_key()
    monkeypatch.setenv("ENCRYPTION_KEYS", key.decode())
    get_settings.cache_clear()
    yield key
    get_settings.cache_clear()


def _sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    async def _run() -> list[tuple[Any, ...]]:
        url = make_url(database_url)
        connection = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
        try:
            return [tuple(row) for row in await connection.fetch(statement)]
        finally:
            await connection.close()

    return asyncio.run(_run())


def test_the_migration_encrypts_stored_webhook_secrets_and_its_downgrade_decrypts_them(
    scratch_database: str, encryption_key: bytes
) -> None:
    config = _alembic_config(scratch_database)
    config.attributes["configure_logging"] = False
    asyncio.run(create_database_if_missing(scratch_database))
    command.upgrade(config, BEFORE_ENCRYPTION)
    organization = uuid.uuid4()
    _sql(scratch_database, f"INSERT INTO organizations (id, name, slug) VALUES ('{organization}', 'Co', 'co')")
    _sql(
        scratch_database,
        "INSERT INTO webhook_endpoints (id, organization_id, livemode, url, events, secret, previous_secret, "
        f"previous_secret_expires_at, enabled) VALUES ('wh_a', '{organization}', true, 'https://a.example/h', "
        "'{*}', 'whsec_current', 'whsec_previous', now() + interval '1 hour', true), "
        f"('wh_b', '{organization}', false, 'https://b.example/h', '{{*}}', 'whsec_only', NULL, NULL, true)",
    )

    command.upgrade(config, "head")
    rows = _sql(
        scratch_database,
        "SELECT id, secret_encrypted, previous_secret_encrypted FROM webhook_endpoints ORDER BY id",
    )
    encryptor = Encryptor([encryption_key])
    assert [(id_, encryptor.decrypt_text(s), p and encryptor.decrypt_text(p)) for id_, s, p in rows] == [
        ("wh_a", "whsec_current", "whsec_previous"),
        ("wh_b", "whsec_only", None),
    ]
    assert all("whsec_" not in str(value) for row in rows for value in row)

    command.downgrade(config, BEFORE_ENCRYPTION)
    assert _sql(scratch_database, "SELECT id, secret, previous_secret FROM webhook_endpoints ORDER BY id") == [
        ("wh_a", "whsec_current", "whsec_previous"),
        ("wh_b", "whsec_only", None),
    ]


async def test_migrate_tells_the_operator_when_postgresql_runs_without_autovacuum(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Jobs, webhook deliveries and events leave a dead row at each status change; without autovacuum
    they pile up, and statements planned while a table was small keep that plan as it grows (the
    webhook bench showed thousands of full scans of `webhook_deliveries` on such a server). Asserted both
    ways, against what the server itself says, since the setting belongs to the machine."""
    url = make_url(database_url)
    connection = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        off = await connection.fetchval("SHOW autovacuum") != "on"
    finally:
        await connection.close()

    with caplog.at_level(logging.WARNING, logger="backplane"):
        await check_autovacuum(database_url)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if off:
        assert warnings == [AUTOVACUUM_OFF]
        assert "VACUUM (ANALYZE)" in AUTOVACUUM_OFF
    else:
        assert warnings == []
