from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.db import unit_of_work


def session_scope(ctx: dict[str, Any]) -> AbstractAsyncContextManager[AsyncSession]:
    """One unit of work for a task: commit on success, roll back on error."""
    return unit_of_work(ctx["sessionmaker"])
