from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backplane.files.storage import Storage


async def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(_storage)]
