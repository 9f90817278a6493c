"""Engine, declarative base and the one unit of work per request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from backplane.core.config import Settings

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


def create_engine(settings: Settings, *, autocommit: bool = False, pool_size: int | None = None) -> AsyncEngine:
    """`autocommit`: each statement commits on its own, for statements that are a whole unit of work by
    themselves (one round trip instead of BEGIN, the statement and COMMIT; its ping is one too).
    `pool_size`: connections kept open (default DATABASE_POOL_SIZE); beyond it up to 10 more are
    opened and closed again as needed, which costs a connection set-up each time."""
    return create_async_engine(
        settings.database.url,
        pool_size=pool_size or settings.database.pool_size,
        pool_pre_ping=True,  # a connection broken while PostgreSQL was down is replaced, not reused
        connect_args={"timeout": settings.database.connect_timeout_seconds},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )


def create_sessionmaker(engine: AsyncEngine, *, redis: Redis | None = None) -> async_sessionmaker[AsyncSession]:
    """`redis`, when given, is each session's `info["redis"]`: what after-commit actions of domain code
    that only gets a session use (e.g. `record_event` waking the webhook dispatcher)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, info={"redis": redis})


AfterCommit = Callable[[], Awaitable[Any]]


def after_commit(session: AsyncSession, action: AfterCommit) -> None:
    """Run `action` once the session's transaction has committed (e.g. enqueue a task).

    Services call this instead of enqueueing directly, so that a worker never sees work whose
    rows a rolled-back transaction never wrote.
    """
    session.info.setdefault("after_commit", []).append(action)


async def commit(session: AsyncSession) -> None:
    await session.commit()
    actions: list[AfterCommit] = session.info.pop("after_commit", [])
    for action in actions:
        await action()


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
