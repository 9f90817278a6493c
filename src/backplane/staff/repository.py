from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.staff.models import StaffAction


class StaffActionRepository:
    """Staff actions span organizations: read by staff only, never through a tenant's repository."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, action: StaffAction) -> StaffAction:
        self.session.add(action)
        return action

    def select(self) -> Select[tuple[StaffAction]]:
        return select(StaffAction)
