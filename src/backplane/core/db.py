"""Engine, declarative base and the one unit of work per request."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg.exceptions
from arq.connections import ArqRedis
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import DateTime, MetaData, Table, event, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import sqltypes
from sqlalchemy.util import await_

from backplane.core import metrics
from backplane.core.batching import Batcher, settle
from backplane.core.config import Settings
from backplane.core.effects import take

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)


def create_engine(
    settings: Settings, *, autocommit: bool = False, pool_size: int | None = None, generic_plans: bool = False
) -> AsyncEngine:
    """`autocommit`: each statement commits on its own, for statements that are a whole unit of work by
    themselves (one round trip instead of BEGIN, the statement and COMMIT).
    `pool_size`: connections kept open (default DATABASE_POOL_SIZE); beyond it up to 10 more are
    opened and closed again as needed, which costs a connection set-up each time.
    `generic_plans`: PostgreSQL plans each prepared statement once per connection
    (`plan_cache_mode = force_generic_plan`), for an engine that runs only a few fixed statements whose
    best plan does not depend on the values bound (ids, tokens, times). By default it plans the first
    five executions on each connection for their values, and later ones too whenever its estimate of
    the generic plan is the costlier."""
    connect_args: dict[str, Any] = {"timeout": settings.database.connect_timeout_seconds}
    if generic_plans:
        connect_args["server_settings"] = {"plan_cache_mode": "force_generic_plan"}
    engine = create_async_engine(
        settings.database.url,
        pool_size=pool_size or settings.database.pool_size,
        pool_pre_ping=True,  # a connection broken while PostgreSQL was down is replaced, not reused (`_ping`)
        connect_args=connect_args,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    engine.sync_engine.dialect.do_ping = _ping  # type: ignore[method-assign]
    count_connections_in_use(engine)
    return engine


def _ping(dbapi_connection: Any) -> bool:
    """The pre-ping in one round trip. SQLAlchemy's asyncpg ping wraps its statement in BEGIN and
    ROLLBACK outside a transaction (for PgBouncer's transaction mode, sqlalchemy#10226, which this
    service is not deployed behind): three round trips before every transaction of every request and
    task. Errors are translated as the driver adapter's own ping translates them, so that a broken
    connection is still recognised as one and replaced."""
    try:
        await_(dbapi_connection._connection.fetchrow(";"))
    except Exception as error:
        dbapi_connection._handle_exception(error)
    return True


def count_connections_in_use(engine: AsyncEngine) -> None:
    """Keep `backplane_db_pool_connections_in_use` current from the pool's own checkout and checkin."""
    in_use = metrics.DB_POOL_IN_USE
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: in_use.inc())
    event.listen(engine.sync_engine.pool, "checkin", lambda *_: in_use.dec())


def create_sessionmaker(
    engine: AsyncEngine, *, redis: Redis | None = None, queue: ArqRedis | None = None
) -> async_sessionmaker[AsyncSession]:
    """`redis` and `queue`, when given, are each session's `info["redis"]` and `info["queue"]`: what its
    unit of work's effects (`core/effects.py`) publish and enqueue with."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info={"redis": redis, "queue": queue})


async def commit(session: AsyncSession) -> None:
    await session.commit()
    done = take(session)
    if done is not None:
        await done.run()


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed (then its after-commit actions run) on success, rolled back on error.

    The only place that commits: requests get it through `SessionDep`, tasks through
    `workers.context.session_scope`.
    """
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            take(session)  # nothing happened: nothing happens after
            await session.rollback()
            raise
        else:
            await commit(session)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is the
# response the client sees, never a 200 for a write that did not happen.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


class HeldConnection:
    """A connection kept checked out across the statements of a hot path (a jobs worker slot's chain of
    runs), for an engine whose statements each commit alone.

    A checkout with the pool's ping costs about as much CPU as the statement it is for (SQLAlchemy's
    async checkout, about 120 us here, and the ping's round trip, about 130 us), so it is paid once, not
    per statement. A connection PostgreSQL closed meanwhile (a restart) is dropped before the next
    statement and another checked out, pinged by the pool: no statement is sent twice."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._connection: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        held = self._connection
        if held is not None and _closed(held):
            self._connection = None
            with contextlib.suppress(Exception):
                await held.invalidate()
            with contextlib.suppress(Exception):
                await held.close()
        if self._connection is None:
            self._connection = await self.engine.connect()
        return self._connection

    async def close(self) -> None:
        held, self._connection = self._connection, None
        if held is not None:
            await held.close()

    async def __aenter__(self) -> HeldConnection:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def _closed(connection: AsyncConnection) -> bool:
    """Whether the connection is known to be unusable (invalidated, or closed by PostgreSQL: asyncpg
    notices the server's end of the socket as soon as the event loop reads it)."""
    if connection.invalidated or connection.sync_connection is None:
        return True
    driver = connection.sync_connection.connection.driver_connection
    return driver is None or bool(driver.is_closed())


@dataclass(frozen=True)
class Companion:
    """Rows of another table that PostgreSQL makes from each row a `RowBatcher` inserts, in the same
    statement (both or neither). `columns`: each of its columns and the SQL expression over the batch's
    columns that gives its value (naming only columns every row of the batch gives); `made`: its columns
    whose values are made here, one per row (an id), named `made_<column>` in the batch."""

    table: Table
    columns: Mapping[str, str]
    made: Mapping[str, Callable[[], Any]] = field(default_factory=dict)


class RowBatcher(Batcher[dict[str, Any]]):
    """Inserts the rows that concurrent requests add to one table in one statement per batch
    (`core/batching.py`: group commit).

    Each caller awaits its own row's commit, so an answer never gets ahead of its row. The statement
    is sent alone, outside a transaction (one statement is atomic by itself), with each column's
    values as one array (`unnest`), so the text is the same for any number of rows and PostgreSQL
    prepares it once. If the batch fails, its rows are retried one by one, so only the row at fault
    fails. Each of the MAX_IN_FLIGHT writers keeps its connection across batches (`HeldConnection`:
    a checkout with its ping cost as much as the statement); `aclose` gives them back. Hand-written:
    SQLAlchemy batches within one session's flush, never across requests, and its executemany is a
    round trip per row.
    """

    # Closed-loop clients (a fleet of machines acquiring, wrk's 64 connections) move in waves: every
    # request of a wave reached the writer while one statement was running, and the process then
    # idled for the 4 to 6 ms PostgreSQL took over the next one, 50 rows or so. Cut into statements of
    # at most 32 rows, four at a time, the wave's rows are written side by side. Alternated wrk runs,
    # six pairs each, acquire against liveness (medians): 4 and 32 0.626x against 0.574x for 2 and no
    # cap; 4 and 16 0.620x against 0.568x; 4 and no cap no change; 8 and 8 cost more API CPU than it saved.
    MAX_IN_FLIGHT = 4
    MAX_BATCH = 32

    def __init__(self, engine: AsyncEngine, table: Table, companion: Companion | None = None) -> None:
        """`companion`: another table's row made by PostgreSQL from each row, inserted by the same
        statement (a seat's history row and its `seat.acquired` event). Every row of a batch names the
        same columns; a column left out gets its server default."""
        super().__init__()
        self.engine = engine
        self.table = table
        self.companion = companion
        self._statements: dict[tuple[str, ...], str] = {}
        self._connections = [HeldConnection(engine) for _ in range(self.MAX_IN_FLIGHT)]  # the free ones
        self._held = list(self._connections)

    async def aclose(self) -> None:
        """Give the held connections back to the pool (before the engine is disposed)."""
        for held in self._held:
            await held.close()

    async def insert(self, row: dict[str, Any]) -> None:
        await self._submit(row)

    async def _run(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        futures = [future for _, future in batch]
        try:
            rows = [row for row, _ in batch]
            names = tuple(rows[0])
            if names not in self._statements:
                self._statements[names] = _unnest_insert(self.table, names, self.companion)
            arrays = [_column_values(self.table.c[name], name, rows) for name in names]
            if self.companion is not None:
                arrays += [[make() for _ in rows] for make in self.companion.made.values()]
            await self._execute(self._statements[names], tuple(arrays))
        except Exception as error:
            if len(batch) == 1:
                settle(futures, error)
                return
            for one in batch:
                await self._run([one])
        except BaseException as cancelled:
            settle(futures, cancelled)
            raise
        else:
            settle(futures, None)

    async def _execute(self, statement: str, parameters: tuple[Any, ...]) -> None:
        """The statement on a free held connection (one each of the MAX_IN_FLIGHT writers, who run one
        statement at a time). After an error the connection goes back to the pool, which pings the
        next one it gives: a connection the error left unusable is never used again. A statement that
        failed because its connection had been closed under it (`_not_run`) is sent once more, on a
        new connection."""
        held = self._connections.pop()
        try:
            for attempt in (1, 2):
                try:
                    await (await held.get()).exec_driver_sql(statement, parameters)
                    return
                except BaseException as error:
                    with contextlib.suppress(Exception):
                        await held.close()
                    if attempt == 2 or not _not_run(error):
                        raise
        finally:
            self._connections.append(held)


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """`rows` (each naming the same columns) into `table` in the session's transaction, by one statement
    whatever their number: each column's values one array (`unnest`), so PostgreSQL prepares the
    text once. SQLAlchemy's bulk insert without RETURNING is an executemany: a statement per row."""
    if not rows:
        return
    names = tuple(rows[0])
    arrays = tuple(_column_values(table.c[name], name, rows) for name in names)
    await (await session.connection()).exec_driver_sql(_unnest_insert_cached(table, names), arrays)


@functools.cache
def _unnest_insert_cached(table: Table, names: tuple[str, ...]) -> str:
    return _unnest_insert(table, names, None)


def _not_run(error: BaseException) -> bool:
    """Whether a statement that failed so never ran: its connection was found closed, or PostgreSQL had
    closed it (a restart, `pg_terminate_backend`) before asyncpg noticed, which then refuses to start
    the statement while it reads the notice, or gets the notice as the statement's answer. Seen here
    (tests/licenses/test_seat_caches.py, about one run in twelve): an acquire right after PostgreSQL
    dropped the history writer's connections failed with asyncpg's "cannot switch to state 12"."""
    if not isinstance(error, DBAPIError):
        return False
    cause = error.orig.__cause__ if error.orig is not None else None
    return error.connection_invalidated or isinstance(
        cause, asyncpg.exceptions.InternalClientError | asyncpg.exceptions.AdminShutdownError
    )


def _unnest_insert(table: Table, names: tuple[str, ...], companion: Companion | None) -> str:
    """One statement inserting into `table` the rows whose columns (`names`) arrive as arrays, $1
    onwards, then the companion's `made` columns: `INSERT ... SELECT FROM unnest(...)`, or with a
    companion `WITH batch AS (SELECT FROM unnest(...)), inserted AS (INSERT ... SELECT FROM batch) INSERT
    INTO <companion> SELECT ... FROM batch`."""
    dialect = postgresql.dialect()
    arrays, selected, aliases = [], [], list(names)
    for number, name in enumerate(names, start=1):
        column = table.c[name]
        is_json = isinstance(column.type, sqltypes.JSON)  # sent as text, each value serialized here
        arrays.append(f"${number}::{'text' if is_json else column.type.compile(dialect)}[]")
        selected.append(f"{name}::{column.type.compile(dialect)}" if is_json else name)
    if companion is not None:
        for number, name in enumerate(companion.made, start=len(names) + 1):
            arrays.append(f"${number}::{companion.table.c[name].type.compile(dialect)}[]")
            aliases.append(f"made_{name}")
    unnest = f"unnest({', '.join(arrays)}) AS batch({', '.join(aliases)})"
    insert = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(selected)}"
    if companion is None:
        return f"{insert} FROM {unnest}"
    into = [*companion.made, *companion.columns]
    values = [*(f"made_{name}" for name in companion.made), *companion.columns.values()]
    return (
        f"WITH batch AS (SELECT * FROM {unnest}), inserted AS ({insert} FROM batch) "
        f"INSERT INTO {companion.table.name} ({', '.join(into)}) SELECT {', '.join(values)} FROM batch"
    )


def _column_values(column: Any, name: str, rows: Sequence[dict[str, Any]]) -> list[Any]:
    """One column's values of `rows`, as its array parameter (JSON serialized here: sent as text)."""
    if isinstance(column.type, sqltypes.JSON):
        return [None if (value := row[name]) is None else json.dumps(value) for row in rows]
    return [row[name] for row in rows]
