"""Keyset (cursor) pagination for the platform surface, ordered newest first by (created_at, id).

The cursor is opaque to clients: base64 of `<iso timestamp>|<id>`. A tampered cursor is a 422,
never a 500.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar, TypeVarTuple

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from backplane.core.errors import InvalidInput

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool = Field(description="Whether another page follows this one.")
    next_cursor: str | None = Field(description="Pass as `cursor` to fetch the next page; null on the last page.")


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-100).")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(created_at: datetime, id_: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, id_type: type = uuid.UUID) -> tuple[datetime, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, id_ = raw.split("|", 1)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        # Normalised to UTC so that an offset cannot push it outside what PostgreSQL stores.
        return moment.astimezone(UTC), id_type(id_)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput({"cursor": ["Invalid cursor."]}) from exc


async def paginate(
    session: AsyncSession,
    stmt: Select[*Ts],
    params: PageParams,
    created_at: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[uuid.UUID] | InstrumentedAttribute[str],
) -> tuple[Sequence[Any], str | None]:
    """Rows of one page (as `stmt` selects them) and the cursor of the next page, if any."""
    if params.cursor:
        stamp, last_id = decode_cursor(params.cursor, id_column.type.python_type)
        stmt = stmt.where(or_(created_at < stamp, and_(created_at == stamp, id_column < last_id)))
    stmt = stmt.order_by(created_at.desc(), id_column.desc()).limit(params.limit + 1)
    rows: Sequence[Any] = (await session.execute(stmt)).all()
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    next_cursor = None
    if has_more:
        last = rows[-1][0]
        next_cursor = encode_cursor(last.created_at, last.id)
    return rows, next_cursor


def created_between(
    stmt: Select[*Ts],
    created_at: InstrumentedAttribute[datetime],
    after: datetime | None,
    before: datetime | None,
) -> Select[*Ts]:
    """The `created_after` / `created_before` filters of list endpoints: both exclusive, in UTC.

    A moment whose UTC form leaves Python's range is a 422, never a 500.
    """
    for name, moment, compare in (
        ("created_after", after, created_at.__gt__),
        ("created_before", before, created_at.__lt__),
    ):
        if moment is None:
            continue
        try:
            stmt = stmt.where(compare(moment.astimezone(UTC)))
        except OverflowError as exc:
            raise InvalidInput({name: ["Datetime is out of range."]}) from exc
    return stmt
