"""Members join by invitation, accepted by the invitee's verified email (issue 12)."""

from __future__ import annotations

import pytest

from tests.fixtures.assertions import assert_error, assert_invalid, assert_not_found
from tests.fixtures.mail import queued_mail

GONE = "This invitation is unknown, was already used, was revoked or has expired."


def invite_url(org_id: str) -> str:
    return f"/v1/organizations/{org_id}/members"


async def test_an_invitation_answers_the_same_whether_or_not_the_address_has_an_account(api, client):
    owner = await api.register()
    await api.register("exists@example.com")
    answers = []
    for email in ("exists@example.com", "nobody@example.com"):
        response = await client.post(invite_url(owner.organization_id), json={"email": email}, headers=owner.headers)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"].startswith("inv_")
        assert (body["email"], body["role"], body["status"]) == (email, "member", "pending")
        answers.append({k: v for k, v in body.items() if k not in ("id", "email", "expires_at", "created_at")})
    assert answers[0] == answers[1]
    mailed = {m.to for m in await queued_mail(api.queue) if "invited" in m.subject}
    assert mailed == {"exists@example.com", "nobody@example.com"}


async def test_the_invitee_accepts_with_a_verified_email_and_becomes_a_member(api, client):
    owner = await api.register()
    invitee = await api.register("invitee@example.com")
    token = await api.invite(owner, "Invitee@Example.com", "admin")
    await api.verify_email(invitee)
    accepted = await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers)
    assert accepted.status_code == 201, accepted.text
    member = accepted.json()
    assert (member["organization_id"], member["user_id"], member["role"]) == (
        owner.organization_id,
        invitee.user_id,
        "admin",
    )
    again = await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers)
    assert_not_found(again, GONE)
    listed = await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=owner.headers)
    assert [i["status"] for i in listed.json()["data"]] == ["accepted"]


async def test_an_unverified_address_cannot_accept(api, client):
    """An account pre-registered with someone else's address is never pulled into an organization."""
    owner = await api.register()
    squatter = await api.register("colleague@example.com")  # registered, never verified
    token = await api.invite(owner, "colleague@example.com", "member")
    refused = await client.post(f"/v1/invitations/{token}/accept", headers=squatter.headers)
    assert_error(
        refused,
        403,
        "FORBIDDEN",
        "Verify your email address first (the link in the verification email), then accept the invitation.",
        {"email_verified": False},
    )
    members = await client.get(f"/v1/organizations/{owner.organization_id}/members", headers=owner.headers)
    assert squatter.user_id not in [m["user_id"] for m in members.json()["data"]]


async def test_another_user_cannot_accept_someone_elses_invitation(api, client):
    owner = await api.register()
    token = await api.invite(owner, "intended@example.com", "admin")
    other = await api.register()
    await api.verify_email(other)
    refused = await client.post(f"/v1/invitations/{token}/accept", headers=other.headers)
    assert_error(
        refused,
        403,
        "FORBIDDEN",
        "This invitation is for another email address: sign in with the address it was sent to.",
    )


async def test_an_api_key_cannot_accept(api, client):
    owner = await api.register()
    invitee = await api.register()
    await api.verify_email(invitee)
    token = await api.invite(owner, invitee.email, "member")
    key = await invitee.create_key(scopes=["read", "write", "admin"])
    refused = await client.post(f"/v1/invitations/{token}/accept", headers={"Authorization": f"Bearer {key['key']}"})
    assert_error(refused, 403, "FORBIDDEN", "This action needs a signed-in user (a JWT), not an API key.")


async def test_a_revoked_invitation_cannot_be_accepted(api, client):
    owner = await api.register()
    invitee = await api.register()
    await api.verify_email(invitee)
    token = await api.invite(owner, invitee.email, "member")
    [invitation] = (
        await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=owner.headers)
    ).json()["data"]
    revoked = await client.delete(
        f"/v1/organizations/{owner.organization_id}/invitations/{invitation['id']}", headers=owner.headers
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert_not_found(await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers), GONE)


async def test_an_expired_invitation_cannot_be_accepted(api, client, settings):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    owner = await api.register()
    invitee = await api.register()
    await api.verify_email(invitee)
    token = await api.invite(owner, invitee.email, "member")
    engine = create_async_engine(settings.database.url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE invitations SET expires_at = now() - interval '1 second'"))
    await engine.dispose()
    assert_not_found(await client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers), GONE)
    listed = await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=owner.headers)
    assert [i["status"] for i in listed.json()["data"]] == ["expired"]


async def test_an_unknown_token_is_404(api, client):
    account = await api.register()
    assert_not_found(await client.post("/v1/invitations/not-a-real-token/accept", headers=account.headers), GONE)
    assert_not_found(await client.post(f"/v1/invitations/{'x' * 129}/accept", headers=account.headers))


async def test_invitations_of_another_organization_are_404(api, client):
    owner = await api.register()
    other = await api.register()
    await api.invite(owner, "someone@example.com", "member")
    [invitation] = (
        await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=owner.headers)
    ).json()["data"]
    foreign = await client.delete(
        f"/v1/organizations/{other.organization_id}/invitations/{invitation['id']}", headers=other.headers
    )
    assert_not_found(foreign, "No invitation with this id.")
    listing = await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=other.headers)
    assert_not_found(listing, "Organization not found.")
    malformed = await client.delete(
        f"/v1/organizations/{owner.organization_id}/invitations/inv_%00", headers=owner.headers
    )
    assert_not_found(malformed, "No invitation with this id.")


@pytest.mark.parametrize("role", ["member", "viewer"])
async def test_below_admin_cannot_list_or_revoke_invitations(api, client, role):
    owner = await api.register()
    actor = await api.register()
    await api.add_member(owner, actor, role)
    listing = await client.get(f"/v1/organizations/{owner.organization_id}/invitations", headers=actor.headers)
    assert listing.status_code == 403


async def test_an_invitation_body_is_checked(api, client):
    owner = await api.register()
    response = await client.post(
        invite_url(owner.organization_id), json={"email": "x@example.com", "role": "god"}, headers=owner.headers
    )
    assert_invalid(response, {"role": ["Input should be 'owner', 'admin', 'member' or 'viewer'"]})


async def test_a_user_may_belong_to_at_most_the_configured_number_of_organizations(api, client, settings):
    from httpx import ASGITransport, AsyncClient

    from backplane.app import create_app
    from tests.fixtures.auth import Api

    app = create_app(settings.model_copy(update={"max_organizations_per_user": 2}))
    transport = ASGITransport(app=app)
    async with app.router.lifespan_context(app), AsyncClient(transport=transport, base_url="http://testserver") as http:
        capped = Api(http, app.state.queue)
        user = await capped.register()  # one organization
        second = await http.post("/v1/organizations", json={"name": "Second"}, headers=user.headers)
        assert second.status_code == 201, second.text
        third = await http.post("/v1/organizations", json={"name": "Third"}, headers=user.headers)
        assert_error(
            third,
            409,
            "ORGANIZATION_LIMIT_REACHED",
            "A user may belong to at most 2 organizations; leave one first.",
            {"max_organizations": 2},
        )
        inviter = await capped.register()
        await capped.verify_email(user)
        token = await capped.invite(inviter, user.email, "member")
        joined = await http.post(f"/v1/invitations/{token}/accept", headers=user.headers)
        assert joined.status_code == 409
        assert joined.json()["error"]["code"] == "ORGANIZATION_LIMIT_REACHED"


async def test_accepting_twice_concurrently_makes_one_membership(api, client):
    import asyncio

    owner = await api.register()
    invitee = await api.register()
    await api.verify_email(invitee)
    token = await api.invite(owner, invitee.email, "member")
    answers = await asyncio.gather(
        *(client.post(f"/v1/invitations/{token}/accept", headers=invitee.headers) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [201, 404, 404]


async def test_the_invitation_mail_carries_only_a_plain_organization_name(api, client):
    owner = await api.register(company="Visit evil.example now")
    await api.invite(owner, "someone@example.com", "member")
    [mail] = [m for m in await queued_mail(api.queue, "someone@example.com") if "invited" in m.subject]
    assert "evil.example" not in mail.body
    assert mail.body.startswith("You have been invited to join an organization on Backplane as member.")
    plain = await api.register(company="Acme Robotics")
    await api.invite(plain, "other@example.com", "viewer")
    [mail] = [m for m in await queued_mail(api.queue, "other@example.com") if "invited" in m.subject]
    assert mail.body.startswith("You have been invited to join Acme Robotics on Backplane as viewer.")


async def test_invitation_mail_to_one_address_is_throttled_but_answers_the_same(api, settings):
    from httpx import ASGITransport, AsyncClient

    from backplane.app import create_app
    from tests.fixtures.auth import Api

    app = create_app(settings.model_copy(update={"rate_limits_enabled": True}))
    transport = ASGITransport(app=app)
    async with app.router.lifespan_context(app), AsyncClient(transport=transport, base_url="http://testserver") as http:
        limited = Api(http, app.state.queue, app.state.settings)
        owner = await limited.register()
        statuses = []
        for _ in range(5):
            response = await http.post(
                f"/v1/organizations/{owner.organization_id}/members",
                json={"email": "target@example.com"},
                headers=owner.headers,
            )
            statuses.append(response.status_code)
        mailed = [m for m in await queued_mail(app.state.queue, "target@example.com") if "invited" in m.subject]
    assert statuses == [201] * 5
    assert len(mailed) == 3


async def test_only_an_owner_deletes_an_organization_and_everything_goes_with_it(api, client):
    from tests.fixtures.assertions import assert_role_forbidden

    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    key = await owner.create_key(scopes=["read", "write"])
    url = f"/v1/organizations/{owner.organization_id}"
    assert_role_forbidden(await client.delete(url, headers=admin.in_org(owner.organization_id)), "admin", "owner")
    refused = await client.delete(url, headers={"Authorization": f"Bearer {key['key']}"})
    assert refused.status_code == 403
    stranger = await api.register()
    assert_not_found(await client.delete(url, headers=stranger.headers), "Organization not found.")
    assert_not_found(await client.delete("/v1/organizations/not-a-uuid", headers=owner.headers))

    deleted = await client.delete(url, headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.get("/v1/users/me", headers={"Authorization": f"Bearer {key['key']}"})).status_code == 401


async def test_an_organization_with_a_live_paid_subscription_is_not_deleted(api, client):
    owner = await api.register()
    await owner.buy("price_pro_monthly", seats=2)
    response = await client.delete(f"/v1/organizations/{owner.organization_id}", headers=owner.headers)
    assert_error(response, 409, "CONFLICT", "This organization has a live paid subscription; cancel it first.")
