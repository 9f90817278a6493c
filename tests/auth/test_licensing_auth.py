"""Licensing surface `/api/v1/auth/...`: register, tokens, refresh, logout, email links, password reset."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from jose import jwt

from tests.auth.helpers import (
    ACCESS_INVALID,
    ACCESS_REVOKED,
    BAD_CREDENTIALS,
    FIELD_REQUIRED,
    INVALID_EMAIL,
    INVALID_LINK,
    REFRESH_INVALID,
    REFRESH_REVOKED,
    SHORT_PASSWORD,
    assert_licensing_error,
    assert_licensing_fields,
    assert_platform_error,
    bearer,
    claims_for,
    forge,
    mailed_token,
)

REGISTER = "/api/v1/auth/register/"
TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
VERIFY = "/api/v1/auth/verify-email/"
FORGOT = "/api/v1/auth/forgot-password/"
RESET = "/api/v1/auth/reset-password/"
ME = "/v1/users/me"

PASSWORD = "SecurePass123!"
NEW_PASSWORD = "EvenBetterPass456!"
CREATED_MESSAGE = "Account created. Check your email to verify your address."
FORGOT_MESSAGE = "If an account exists for this email address, a password reset link has been sent."
RESET_LINK_VALID = 'The link is valid. POST {"token", "new_password"} to this URL to choose a new password.'
PASSWORD_CHANGED = "Password changed. Sign in with the new password."
LOGGED_OUT = "Logged out. The refresh token is revoked."
NOT_JSON_OBJECT = "Input should be a valid dictionary or object to extract fields from"


def registration(**overrides: Any) -> dict[str, Any]:
    body = {
        "email": "dev@example.com",
        "password": PASSWORD,
        "full_name": "Developer",
        "company_name": "My Company",
    }
    body.update(overrides)
    return body


async def login(client, email: str, password: str = PASSWORD) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = await client.post(TOKEN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


# --- register ----------------------------------------------------------------------------------


async def test_register_returns_the_user_its_organization_and_a_message(client):
    response = await client.post(REGISTER, json=registration())

    assert response.status_code == 201, response.text
    body = response.json()
    user_id, org_id = body["user"]["id"], body["organization"]["id"]
    assert uuid.UUID(user_id) and uuid.UUID(org_id)  # licensing ids are UUIDs
    datetime.fromisoformat(body["user"]["created_at"])
    assert body == {
        "user": {
            "id": user_id,
            "email": "dev@example.com",
            "full_name": "Developer",
            "email_verified": False,
            "is_staff": False,
            "created_at": body["user"]["created_at"],
        },
        "organization": {"id": org_id, "name": "My Company", "slug": "my-company"},
        "message": CREATED_MESSAGE,
    }


async def test_registered_user_owns_the_new_organization(client):
    created = (await client.post(REGISTER, json=registration())).json()
    tokens = await login(client, "dev@example.com")

    me = await client.get(ME, headers=bearer(tokens["access"]))

    assert me.status_code == 200, me.text
    assert me.json()["user"] == created["user"]
    assert me.json()["organization"] == created["organization"]
    assert me.json()["role"] == "owner"


async def test_verification_email_link_verifies_the_address_once(client, mailbox, run_tasks):
    await client.post(REGISTER, json=registration())
    tokens = await login(client, "dev@example.com")
    assert await run_tasks() >= 1

    [message] = mailbox.to("dev@example.com")
    assert message["Subject"] == "Verify your email address"
    [link] = [link for link in mailbox.links_to("dev@example.com") if "/api/v1/auth/verify-email/?token=" in link]
    path = link.removeprefix("http://testserver")

    verified = await client.get(path)
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"message": "Email address verified."}
    me = await client.get(ME, headers=bearer(tokens["access"]))
    assert me.json()["user"]["email_verified"] is True

    again = await client.get(path)
    assert_licensing_error(again, 400, "Invalid token", INVALID_LINK)


async def test_email_is_not_verified_before_the_link_is_opened(client, mailbox, run_tasks):
    await client.post(REGISTER, json=registration())
    await run_tasks()
    tokens = await login(client, "dev@example.com")

    me = await client.get(ME, headers=bearer(tokens["access"]))

    assert me.json()["user"]["email_verified"] is False


async def test_verify_email_rejects_an_unknown_token(client):
    response = await client.get(VERIFY, params={"token": "not-a-real-token"})

    assert_licensing_error(response, 400, "Invalid token", INVALID_LINK)


async def test_verify_email_without_a_token_is_a_field_error(client):
    response = await client.get(VERIFY)

    assert_licensing_fields(response, {"token": [FIELD_REQUIRED]})


@pytest.mark.parametrize("second_email", ["dev@example.com", "DEV@Example.COM", "Dev@example.com"])
async def test_register_with_a_taken_email_conflicts(client, second_email):
    first = await client.post(REGISTER, json=registration())
    assert first.status_code == 201, first.text

    again = await client.post(REGISTER, json=registration(email=second_email, password="AnotherPass999!"))

    assert_licensing_error(again, 409, "Conflict", "A user with this email address already exists.")
    # The first account is untouched: its password still works, the second one does not.
    await login(client, "dev@example.com")
    denied = await client.post(TOKEN, json={"email": "dev@example.com", "password": "AnotherPass999!"})
    assert_licensing_error(denied, 401, "Unauthorized", BAD_CREDENTIALS)


async def test_email_is_stored_lower_case_and_login_ignores_case(client):
    response = await client.post(REGISTER, json=registration(email="Dev.Mixed@Example.COM"))
    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == "dev.mixed@example.com"

    tokens = await login(client, "DEV.MIXED@example.com")

    assert set(tokens) == {"access", "refresh"}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", SHORT_PASSWORD),
        ("Seven7!", SHORT_PASSWORD),
        ("", SHORT_PASSWORD),
        ("p" * 300, "Password must be at most 256 characters."),
        (" " * 12, "Password cannot be only whitespace."),
    ],
)
async def test_register_rejects_a_weak_password(client, password, message):
    response = await client.post(REGISTER, json=registration(password=password))

    assert_licensing_fields(response, {"password": [message]})
    # Nothing was created.
    denied = await client.post(TOKEN, json={"email": "dev@example.com", "password": password or "x"})
    assert_licensing_error(denied, 401, "Unauthorized", BAD_CREDENTIALS)


async def test_register_accepts_a_password_of_exactly_eight_characters(client):
    response = await client.post(REGISTER, json=registration(password="Eight8!!"))

    assert response.status_code == 201, response.text
    await login(client, "dev@example.com", "Eight8!!")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@example.com", "dev@", "dev@@example.com", "", "dev @x.com"])
async def test_register_rejects_an_invalid_email(client, email):
    response = await client.post(REGISTER, json=registration(email=email))

    assert_licensing_fields(response, {"email": [INVALID_EMAIL]})


async def test_register_reports_every_missing_field(client):
    response = await client.post(REGISTER, json={})

    assert_licensing_fields(
        response,
        {
            "email": [FIELD_REQUIRED],
            "password": [FIELD_REQUIRED],
            "full_name": [FIELD_REQUIRED],
            "company_name": [FIELD_REQUIRED],
        },
    )


async def test_register_reports_only_the_missing_fields(client):
    response = await client.post(REGISTER, json={"email": "dev@example.com", "password": PASSWORD})

    assert_licensing_fields(response, {"full_name": [FIELD_REQUIRED], "company_name": [FIELD_REQUIRED]})


async def test_register_rejects_blank_names(client):
    response = await client.post(REGISTER, json=registration(full_name="   ", company_name=""))

    assert_licensing_fields(
        response,
        {
            "full_name": ["String should have at least 1 character"],
            "company_name": ["String should have at least 1 character"],
        },
    )


async def test_register_rejects_wrong_types(client):
    response = await client.post(REGISTER, json=registration(email=5, full_name=None, company_name=["x"]))

    assert_licensing_fields(
        response,
        {
            "email": ["Input should be a valid string"],
            "full_name": ["Input should be a valid string"],
            "company_name": ["Input should be a valid string"],
        },
    )


@pytest.mark.parametrize("path", [REGISTER, TOKEN, REFRESH, LOGOUT, FORGOT, RESET])
async def test_malformed_json_is_a_400(client, path):
    response = await client.post(
        path, content=b'{"email": "dev@example.com",', headers={"Content-Type": "application/json"}
    )

    assert_licensing_error(
        response,
        400,
        "Malformed JSON",
        "The request body is not valid JSON: Expecting property name enclosed in double quotes.",
    )


@pytest.mark.parametrize("payload", [[], [registration()], "dev@example.com", 42, True])
async def test_a_json_value_that_is_not_an_object_is_a_400(client, payload):
    response = await client.post(REGISTER, json=payload)

    assert_licensing_fields(response, {"non_field_errors": [NOT_JSON_OBJECT]})


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("full_name", "String should have at most 200 characters"),
        ("company_name", "String should have at most 200 characters"),
        ("email", "String should have at most 320 characters"),
    ],
)
async def test_oversized_strings_are_a_400(client, field, message):
    value = "a" * 10_000 + "@example.com" if field == "email" else "a" * 10_000

    response = await client.post(REGISTER, json=registration(**{field: value}))

    assert_licensing_fields(response, {field: [message]})


async def test_an_oversized_password_is_a_400(client):
    response = await client.post(REGISTER, json=registration(password="p" * 10_000))

    assert response.status_code == 400, response.text
    assert set(response.json()) == {"errors"}
    assert list(response.json()["errors"]) == ["password"]


@pytest.mark.parametrize("field", ["full_name", "company_name"])
async def test_a_nul_character_in_a_name_is_a_400_not_a_500(raw_client, field):
    # PostgreSQL text cannot hold U+0000: it must be refused as bad input, never reach the database.
    response = await raw_client.post(REGISTER, json=registration(**{field: "Dev\u0000eloper"}))

    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert len(errors[field]) == 1


# --- token/ ------------------------------------------------------------------------------------


async def test_token_returns_an_access_and_a_refresh_token(api, client, settings):
    account = await api.register("dev@example.com")

    response = await client.post(TOKEN, json={"email": "dev@example.com", "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access", "refresh"}
    issued = {"algorithms": ["HS256"], "issuer": "http://testserver", "audience": "backplane"}
    access = jwt.decode(body["access"], settings.secret_key, **issued)
    refresh = jwt.decode(body["refresh"], settings.secret_key, **issued)
    assert access["iss"] == refresh["iss"] == "http://testserver"  # PUBLIC_BASE_URL
    assert access["aud"] == refresh["aud"] == "backplane"
    assert access["type"] == "access"
    assert refresh["type"] == "refresh"
    assert access["sub"] == refresh["sub"] == account.user_id
    assert access["jti"] != refresh["jti"]
    assert 899 <= access["exp"] - access["iat"] <= 900  # 15 minutes
    assert 604_799 <= refresh["exp"] - refresh["iat"] <= 604_800  # 7 days
    me = await client.get(ME, headers=bearer(body["access"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == account.user_id


async def test_wrong_password_and_unknown_email_get_the_same_401(api, client):
    await api.register("dev@example.com")

    wrong_password = await client.post(TOKEN, json={"email": "dev@example.com", "password": "WrongPass123!"})
    unknown_email = await client.post(TOKEN, json={"email": "nobody@example.com", "password": PASSWORD})

    assert_licensing_error(wrong_password, 401, "Unauthorized", BAD_CREDENTIALS)
    assert_licensing_error(unknown_email, 401, "Unauthorized", BAD_CREDENTIALS)
    assert wrong_password.json() == unknown_email.json()


async def test_token_reports_missing_fields(client):
    response = await client.post(TOKEN, json={})

    assert_licensing_fields(response, {"email": [FIELD_REQUIRED], "password": [FIELD_REQUIRED]})


async def test_token_rejects_an_invalid_email(client):
    response = await client.post(TOKEN, json={"email": "not-an-email", "password": PASSWORD})

    assert_licensing_fields(response, {"email": [INVALID_EMAIL]})


# --- token/refresh/ ----------------------------------------------------------------------------


async def test_refresh_returns_an_access_token_that_works(api, client):
    account = await api.register()

    response = await client.post(REFRESH, json={"refresh": account.refresh})

    assert response.status_code == 200, response.text
    assert set(response.json()) == {"access"}
    me = await client.get(ME, headers=bearer(response.json()["access"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == account.user_id


async def test_the_same_refresh_token_works_many_times(api, client):
    account = await api.register()

    accesses = []
    for _ in range(4):
        response = await client.post(REFRESH, json={"refresh": account.refresh})
        assert response.status_code == 200, response.text
        accesses.append(response.json()["access"])

    assert len(set(accesses)) == 4  # a fresh access token each time
    for access in accesses:
        me = await client.get(ME, headers=bearer(access))
        assert me.status_code == 200, me.text


async def test_an_access_token_is_not_a_refresh_token(api, client):
    account = await api.register()

    response = await client.post(REFRESH, json={"refresh": account.access})

    assert_licensing_error(response, 401, "Unauthorized", REFRESH_INVALID)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
async def test_a_garbage_refresh_token_is_a_401(client, token):
    response = await client.post(REFRESH, json={"refresh": token})

    assert_licensing_error(response, 401, "Unauthorized", REFRESH_INVALID)


async def test_an_expired_refresh_token_is_a_401(api, client, settings):
    account = await api.register()
    token = forge(claims_for(account.user_id, "refresh", ttl=-60), settings.secret_key)

    response = await client.post(REFRESH, json={"refresh": token})

    assert_licensing_error(response, 401, "Unauthorized", REFRESH_INVALID)


async def test_a_refresh_token_signed_with_another_secret_is_a_401(api, client, settings):
    account = await api.register()
    token = forge(claims_for(account.user_id, "refresh", ttl=3600), "another-secret-" + settings.secret_key)

    response = await client.post(REFRESH, json={"refresh": token})

    assert_licensing_error(response, 401, "Unauthorized", REFRESH_INVALID)


async def test_a_forged_refresh_token_with_the_right_secret_works(api, client, settings):
    # The control for the two tests above: only the expiry or the key differs.
    account = await api.register()
    token = forge(claims_for(account.user_id, "refresh", ttl=3600), settings.secret_key)

    response = await client.post(REFRESH, json={"refresh": token})

    assert response.status_code == 200, response.text


async def test_refresh_without_a_token_is_a_field_error(client):
    response = await client.post(REFRESH, json={})

    assert_licensing_fields(response, {"refresh": [FIELD_REQUIRED]})


# --- logout/ -----------------------------------------------------------------------------------


async def test_logout_revokes_that_refresh_token_only(api, client):
    account = await api.register("dev@example.com")
    other_session = await login(client, "dev@example.com")

    response = await client.post(LOGOUT, json={"refresh": account.refresh})

    assert response.status_code == 200, response.text
    assert response.json() == {"message": LOGGED_OUT}
    revoked = await client.post(REFRESH, json={"refresh": account.refresh})
    assert_licensing_error(revoked, 401, "Unauthorized", REFRESH_REVOKED)
    still_valid = await client.post(REFRESH, json={"refresh": other_session["refresh"]})
    assert still_valid.status_code == 200, still_valid.text


async def test_logout_revokes_the_access_token_sent_in_authorization(api, client):
    account = await api.register("dev@example.com")
    other_session = await login(client, "dev@example.com")

    response = await client.post(LOGOUT, json={"refresh": account.refresh}, headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"message": LOGGED_OUT}
    me = await client.get(ME, headers=account.headers)
    assert_platform_error(me, 401, "UNAUTHORIZED", ACCESS_REVOKED)
    still_valid = await client.get(ME, headers=bearer(other_session["access"]))
    assert still_valid.status_code == 200, still_valid.text


async def test_logout_revokes_every_access_token_of_that_sign_in(api, client):
    # Access tokens refreshed from the logged-out refresh token die with it, even those the
    # client no longer holds or did not send.
    account = await api.register("dev@example.com")
    refreshed = await client.post(REFRESH, json={"refresh": account.refresh})
    assert refreshed.status_code == 200, refreshed.text
    other_session = await login(client, "dev@example.com")

    response = await client.post(LOGOUT, json={"refresh": account.refresh})

    assert response.status_code == 200, response.text
    for access in (account.access, refreshed.json()["access"]):
        me = await client.get(ME, headers=bearer(access))
        assert_platform_error(me, 401, "UNAUTHORIZED", ACCESS_REVOKED)
    still_valid = await client.get(ME, headers=bearer(other_session["access"]))
    assert still_valid.status_code == 200, still_valid.text


async def test_logout_with_another_users_access_token_revokes_nothing(api, client):
    account = await api.register("dev@example.com")
    stranger = await api.register("stranger@example.com")

    response = await client.post(LOGOUT, json={"refresh": account.refresh}, headers=stranger.headers)

    assert_licensing_error(response, 401, "Unauthorized", ACCESS_INVALID)
    assert (await client.get(ME, headers=stranger.headers)).status_code == 200
    assert (await client.post(REFRESH, json={"refresh": account.refresh})).status_code == 200


async def test_logout_with_a_forged_access_token_is_a_401(api, client):
    account = await api.register("dev@example.com")

    response = await client.post(LOGOUT, json={"refresh": account.refresh}, headers=bearer("not-a-token"))

    assert_licensing_error(response, 401, "Unauthorized", ACCESS_INVALID)
    assert (await client.post(REFRESH, json={"refresh": account.refresh})).status_code == 200


async def test_logout_with_an_expired_access_token_still_logs_out(api, client, settings):
    account = await api.register("dev@example.com")
    expired = forge(claims_for(account.user_id, iat=int(time.time()) - 1000, ttl=-100), settings.secret_key)

    response = await client.post(LOGOUT, json={"refresh": account.refresh}, headers=bearer(expired))

    assert response.status_code == 200, response.text
    revoked = await client.post(REFRESH, json={"refresh": account.refresh})
    assert_licensing_error(revoked, 401, "Unauthorized", REFRESH_REVOKED)


async def test_logout_twice_is_a_401(api, client):
    account = await api.register()
    first = await client.post(LOGOUT, json={"refresh": account.refresh})
    assert first.status_code == 200, first.text

    second = await client.post(LOGOUT, json={"refresh": account.refresh})

    assert_licensing_error(second, 401, "Unauthorized", REFRESH_REVOKED)


async def test_logout_with_an_access_token_is_a_401(api, client):
    account = await api.register()

    response = await client.post(LOGOUT, json={"refresh": account.access})

    assert_licensing_error(response, 401, "Unauthorized", REFRESH_INVALID)
    still_valid = await client.post(REFRESH, json={"refresh": account.refresh})
    assert still_valid.status_code == 200, still_valid.text


# --- forgot-password/ and reset-password/ ------------------------------------------------------


async def _request_reset(client, mailbox, run_tasks, email: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(FORGOT, json={"email": email})
    assert response.status_code == 200, response.text
    await run_tasks()
    assert "Reset your password" in [m["Subject"] for m in mailbox.to(email)]
    return mailed_token(mailbox, email, "reset-password")


async def test_forgot_password_answers_the_same_for_known_and_unknown_emails(api, client, mailbox, run_tasks):
    await api.register("dev@example.com")
    await run_tasks()
    mailbox.messages.clear()  # drop the verification email

    known = await client.post(FORGOT, json={"email": "dev@example.com"})
    unknown = await client.post(FORGOT, json={"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json() == {"message": FORGOT_MESSAGE}
    assert await run_tasks() == 3  # a link task for each address, and one mail
    [message] = mailbox.messages
    assert message["To"] == "dev@example.com"
    assert message["Subject"] == "Reset your password"
    assert mailbox.to("nobody@example.com") == []


async def test_forgot_password_rejects_an_invalid_email(client):
    response = await client.post(FORGOT, json={"email": "not-an-email"})

    assert_licensing_fields(response, {"email": [INVALID_EMAIL]})


async def test_reset_password_with_the_mailed_token(api, client, mailbox, run_tasks):
    account = await api.register("dev@example.com")
    token = await _request_reset(client, mailbox, run_tasks, "dev@example.com")

    check = await client.get(RESET, params={"token": token})
    assert check.status_code == 200, check.text
    assert check.json() == {"message": RESET_LINK_VALID}

    response = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})

    assert response.status_code == 200, response.text
    assert response.json() == {"message": PASSWORD_CHANGED}
    old_password = await client.post(TOKEN, json={"email": "dev@example.com", "password": PASSWORD})
    assert_licensing_error(old_password, 401, "Unauthorized", BAD_CREDENTIALS)
    tokens = await login(client, "dev@example.com", NEW_PASSWORD)
    me = await client.get(ME, headers=bearer(tokens["access"]))
    assert me.status_code == 200, me.text
    assert me.json()["user"]["id"] == account.user_id


async def test_reset_password_signs_out_every_earlier_session(api, client, mailbox, run_tasks):
    account = await api.register("dev@example.com")
    second = await login(client, "dev@example.com")
    token = await _request_reset(client, mailbox, run_tasks, "dev@example.com")

    response = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 200, response.text

    for refresh in (account.refresh, second["refresh"]):
        denied = await client.post(REFRESH, json={"refresh": refresh})
        assert_licensing_error(denied, 401, "Unauthorized", REFRESH_REVOKED)
    old_access = await client.get(ME, headers=account.headers)
    assert_platform_error(old_access, 401, "UNAUTHORIZED", ACCESS_REVOKED)
    # Tokens issued after the reset are not affected.
    fresh = await login(client, "dev@example.com", NEW_PASSWORD)
    refreshed = await client.post(REFRESH, json={"refresh": fresh["refresh"]})
    assert refreshed.status_code == 200, refreshed.text


async def test_a_reset_token_works_once(api, client, mailbox, run_tasks):
    await api.register("dev@example.com")
    token = await _request_reset(client, mailbox, run_tasks, "dev@example.com")
    first = await client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})
    assert first.status_code == 200, first.text

    again = await client.post(RESET, json={"token": token, "new_password": "YetAnotherPass789!"})
    check = await client.get(RESET, params={"token": token})

    assert_licensing_error(again, 400, "Invalid token", INVALID_LINK)
    assert_licensing_error(check, 400, "Invalid token", INVALID_LINK)
    await login(client, "dev@example.com", NEW_PASSWORD)


async def test_using_one_reset_link_voids_the_earlier_ones(api, client, mailbox, run_tasks):
    await api.register("dev@example.com")
    older = await _request_reset(client, mailbox, run_tasks, "dev@example.com")
    newer = await _request_reset(client, mailbox, run_tasks, "dev@example.com")
    assert older != newer

    used = await client.post(RESET, json={"token": newer, "new_password": NEW_PASSWORD})
    assert used.status_code == 200, used.text

    stale = await client.post(RESET, json={"token": older, "new_password": "YetAnotherPass789!"})
    assert_licensing_error(stale, 400, "Invalid token", INVALID_LINK)
    await login(client, "dev@example.com", NEW_PASSWORD)


async def test_a_verification_token_is_not_a_reset_token(client, mailbox, run_tasks):
    await client.post(REGISTER, json=registration())
    await run_tasks()
    verify_token = mailed_token(mailbox, "dev@example.com", "verify-email")

    response = await client.post(RESET, json={"token": verify_token, "new_password": NEW_PASSWORD})

    assert_licensing_error(response, 400, "Invalid token", INVALID_LINK)
    await login(client, "dev@example.com")


async def test_reset_password_with_an_unknown_token(client):
    check = await client.get(RESET, params={"token": "not-a-real-token"})
    post = await client.post(RESET, json={"token": "not-a-real-token", "new_password": NEW_PASSWORD})

    assert_licensing_error(check, 400, "Invalid token", INVALID_LINK)
    assert_licensing_error(post, 400, "Invalid token", INVALID_LINK)


async def test_reset_password_check_without_a_token_is_a_field_error(client):
    response = await client.get(RESET)

    assert_licensing_fields(response, {"token": [FIELD_REQUIRED]})


async def test_reset_password_rejects_a_weak_password_and_keeps_the_token(api, client, mailbox, run_tasks):
    await api.register("dev@example.com")
    token = await _request_reset(client, mailbox, run_tasks, "dev@example.com")

    response = await client.post(RESET, json={"token": token, "new_password": "short"})

    assert_licensing_fields(response, {"new_password": [SHORT_PASSWORD]})
    await login(client, "dev@example.com", PASSWORD)  # unchanged
    check = await client.get(RESET, params={"token": token})
    assert check.status_code == 200, check.text  # not used up by the rejected attempt


async def test_reset_password_reports_missing_fields(client):
    response = await client.post(RESET, json={})

    assert_licensing_fields(response, {"token": [FIELD_REQUIRED], "new_password": [FIELD_REQUIRED]})
