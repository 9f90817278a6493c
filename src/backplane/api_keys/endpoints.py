"""`/v1/api-keys`: create (the full key is shown once), list, get, revoke. Admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from backplane.access.requirements import Admin, Idempotent
from backplane.api_keys import service
from backplane.api_keys.models import ApiKey
from backplane.api_keys.repository import ApiKeyRepository
from backplane.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from backplane.billing.deps import PlatformLimit
from backplane.core.db import SessionDep
from backplane.core.openapi import platform_errors
from backplane.core.pagination import Page, PageParams, page_params, paginate

router = APIRouter(
    prefix="/v1/api-keys",
    tags=["API keys"],
    responses=platform_errors(401, 403, 404, 422, 429),
    dependencies=[PlatformLimit, Idempotent],
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description="The response's `key` is the only time the full key is shown; only its hash is stored.",
)
async def create_api_key(body: ApiKeyCreate, principal: Admin, session: SessionDep) -> ApiKeyCreated:
    api_key, secret = await service.create_key(session, principal, body)
    return ApiKeyCreated.model_validate({**ApiKeyRead.model_validate(api_key).model_dump(), "key": secret})


@router.get("", response_model=Page[ApiKeyRead], summary="List API keys")
async def list_api_keys(
    principal: Admin,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> Page[ApiKeyRead]:
    stmt = ApiKeyRepository(session, principal.organization_id).select()
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    rows, cursor = await paginate(session, stmt, page, ApiKey.created_at, ApiKey.id)
    return Page(
        data=[ApiKeyRead.model_validate(r[0]) for r in rows],
        has_more=cursor is not None,
        next_cursor=cursor,
    )


@router.get("/{key_id}", response_model=ApiKeyRead, summary="Get an API key")
async def get_api_key(key_id: uuid.UUID, principal: Admin, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await service.get_key(session, principal, key_id))


@router.delete(
    "/{key_id}",
    response_model=ApiKeyRead,
    summary="Revoke an API key",
    description="Takes effect at once.",
)
async def revoke_api_key(key_id: uuid.UUID, principal: Admin, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await service.revoke_key(session, principal, key_id))
