from __future__ import annotations

from sqlalchemy import Select

from backplane.core.tenancy import TenantRepository
from backplane.files.models import File


class FileRepository(TenantRepository[File]):
    """Files of one organization, and of one mode: test-mode keys see only test-mode files."""

    model = File

    def __init__(self, session, organization_id, livemode: bool) -> None:  # type: ignore[no-untyped-def]
        super().__init__(session, organization_id)
        self.livemode = livemode

    def select(self) -> Select[File]:
        return super().select().where(File.livemode.is_(self.livemode))

    async def get_by_public_id(self, file_id: str, *, for_update: bool = False) -> File | None:
        stmt = self.select().where(File.id == file_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
