"""Every tenant query goes through `TenantRepository.select()`, which scopes by organization.

A repository for an organization-owned model subclasses it; there is no unscoped `select` on it,
so forgetting the scope is impossible rather than merely unlikely.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from backplane.core.ids import is_id

M = TypeVar("M", bound=Any)


class TenantRepository(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID) -> None:
        self.session = session
        self.organization_id = organization_id

    def select(self) -> Select[M]:
        return select(self.model).where(self.model.organization_id == self.organization_id)

    async def get(self, id_: uuid.UUID, *, for_update: bool = False) -> M | None:
        stmt = self.select().where(self.model.id == id_)
        if for_update:
            stmt = stmt.with_for_update()
        result: M | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result

    def add(self, obj: M) -> M:
        if obj.organization_id is None:
            obj.organization_id = self.organization_id
        if obj.organization_id != self.organization_id:
            raise ValueError("object belongs to another organization")
        self.session.add(obj)
        return obj


class LivemodeRepository(TenantRepository[M]):
    """Resources of one organization and one mode (test-mode keys see only test-mode resources),
    addressed by their public string id (`file_…`, `job_…`): `id_prefix` names the type."""

    id_prefix: ClassVar[str]

    def __init__(self, session: AsyncSession, organization_id: uuid.UUID, livemode: bool) -> None:
        super().__init__(session, organization_id)
        self.livemode = livemode

    def select(self) -> Select[M]:
        return super().select().where(self.model.livemode.is_(self.livemode))

    async def get_by_public_id(self, public_id: str, *, for_update: bool = False) -> M | None:
        if not is_id(public_id, self.id_prefix):
            return None
        stmt = self.select().where(self.model.id == public_id)
        if for_update:
            stmt = stmt.with_for_update()
        result: M | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result
