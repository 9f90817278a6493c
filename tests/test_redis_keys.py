"""Every Redis key lives under `bp:` (`core/keys.py`), but arq's own; keys of the version before the
prefix are moved under it by `backplane migrate`, so that nothing they held (a revocation) is lost."""

from __future__ import annotations

import time
import uuid

import httpx
from fastapi import FastAPI

from backplane.auth.revocation import is_revoked
from backplane.core.keys import rename_legacy_keys
from backplane.core.security import TokenClaims
from tests.fixtures.auth import Api

ARQ_OWN = ("arq:", "backplane:queue", "backplane:jobs")


async def test_a_flow_leaves_only_prefixed_keys_and_arqs_own(api: Api, client: httpx.AsyncClient, app: FastAPI) -> None:
    redis = app.state.redis
    await redis.flushdb()
    owner = await api.register("keys@example.com")
    license_ = await api.issue_license(owner, seats=2)
    acquired = await client.post(
        "/api/v1/licenses/acquire/",
        json={"license_key": license_["key_string"], "hardware_id": "m"},
        headers=owner.headers,
    )
    session_id = acquired.json()["session_id"]
    assert (await client.patch(f"/api/v1/licenses/sessions/{session_id}/heartbeat/", headers=owner.headers)).is_success
    assert (await client.delete(f"/api/v1/licenses/sessions/{session_id}/", headers=owner.headers)).is_success
    assert (await client.post("/api/v1/licenses/validate/", json={"key_string": license_["key_string"]})).is_success
    assert (
        await client.post("/api/v1/auth/logout/", json={"refresh": owner.refresh}, headers=owner.headers)
    ).is_success
    names = [k.decode() if isinstance(k, bytes) else k async for k in redis.scan_iter(count=1000)]
    assert names, "the flow wrote nothing to Redis"
    assert sorted(n for n in names if not n.startswith(("bp:", *ARQ_OWN))) == []


async def test_migrate_moves_legacy_keys_and_a_revoked_token_stays_revoked(app: FastAPI) -> None:
    redis = app.state.redis
    await redis.flushdb()
    user = str(uuid.uuid4())
    claims = TokenClaims(
        subject=user, token_type="access", jti="legacy-jti", issued_at=time.time() - 5, expires_at=time.time() + 600
    )
    await redis.set("auth:revoked-jti:legacy-jti", "1", ex=600)
    await redis.set("lic:L1:leases", "x")
    await redis.set("bp:lic:L2:leases", "new")
    await redis.set("lic:L2:leases", "old")  # both names: the new one wins
    assert not await is_revoked(redis, claims)  # the new version does not read the old name

    assert await rename_legacy_keys(redis) == 2
    assert await is_revoked(redis, claims)
    assert 0 < await redis.ttl("bp:auth:revoked-jti:legacy-jti") <= 600  # its time to live came with it
    assert await redis.get("bp:lic:L1:leases") == "x"
    assert await redis.get("bp:lic:L2:leases") == "new"
    assert await redis.exists("auth:revoked-jti:legacy-jti", "lic:L1:leases", "lic:L2:leases") == 0
    assert await rename_legacy_keys(redis) == 0  # idempotent
