from __future__ import annotations

import httpx

from tests.fixtures.auth import PASSWORD, Api


async def test_deactivating_revokes_every_token_and_refuses_sign_in(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register("leaving@example.com")
    response = await client.delete("/v1/users/me", headers=account.headers)
    assert response.status_code == 204

    me = await client.get("/v1/users/me", headers=account.headers)
    assert me.status_code == 401
    assert me.json()["error"]["message"] == "Access token has been revoked."
    refresh = await client.post("/api/v1/auth/token/refresh/", json={"refresh": account.refresh})
    assert refresh.status_code == 401
    login = await client.post("/api/v1/auth/token/", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 401
    assert login.json() == {"error": "Unauthorized", "detail": "No active account found with the given credentials."}


async def test_the_only_owner_of_a_shared_organization_cannot_deactivate(api: Api, client: httpx.AsyncClient) -> None:
    owner = await api.register("owner@example.com")
    member = await api.register("member@example.com")
    await api.add_member(owner, member, "member")

    response = await client.delete("/v1/users/me", headers=owner.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert response.json()["error"]["details"] == {"organization_ids": [owner.organization_id]}
    assert (await client.get("/v1/users/me", headers=owner.headers)).status_code == 200


async def test_an_api_key_cannot_deactivate_its_creator(api: Api, client: httpx.AsyncClient) -> None:
    account = await api.register("keyed@example.com")
    key = await account.create_key(scopes=["read", "write", "admin"])
    response = await client.delete("/v1/users/me", headers={"Authorization": f"Bearer {key['key']}"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This action needs a signed-in user (a JWT), not an API key."
