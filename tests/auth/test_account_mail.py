"""Account mail (verification and reset links) cannot be turned against others: the same work for every
address, at most 3 mails an hour to one recipient, and no text of the requester's choosing but a name."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from backplane.app import create_app
from backplane.core.config import Settings
from tests.fixtures.auth import Api
from tests.fixtures.smtp import Mailbox
from tests.fixtures.worker import run_burst_worker

REGISTER = "/api/v1/auth/register/"
FORGOT = "/api/v1/auth/forgot-password/"
FORGOT_MESSAGE = "If an account exists for this email address, a password reset link has been sent."
_addresses = (f"192.0.2.{n}" for n in itertools.count(1))


async def test_forgot_password_queues_the_same_work_for_known_and_unknown_addresses(
    api: Api,
    app: FastAPI,
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    run_tasks,  # type: ignore[no-untyped-def]
) -> None:
    await api.register("dev@example.com")
    await run_tasks()
    mailbox.messages.clear()

    known = await client.post(FORGOT, json={"email": "dev@example.com"})
    unknown = await client.post(FORGOT, json={"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json() == {"message": FORGOT_MESSAGE}
    # Neither request looked the account up: each queued the same task, which the worker runs.
    queued = await app.state.queue.queued_jobs()
    assert [(job.function, job.args) for job in queued] == [
        ("auth.mail_link", ("reset_password", "dev@example.com")),
        ("auth.mail_link", ("reset_password", "nobody@example.com")),
    ]
    await run_tasks()
    assert [m["To"] for m in mailbox.messages] == ["dev@example.com"]


@pytest.fixture
def limited_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limits_enabled": True})


@pytest.fixture
async def limited_app(limited_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(limited_settings)
    async with application.router.lifespan_context(application):
        yield application


async def _post(app: FastAPI, path: str, body: dict[str, str]) -> httpx.Response:
    """From a fresh client address each time: the per-address limit is not what these tests are about."""
    transport = httpx.ASGITransport(app=app, client=(next(_addresses), 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.post(path, json=body)


async def _forgot(app: FastAPI, email: str) -> httpx.Response:
    return await _post(app, FORGOT, {"email": email})


async def test_at_most_3_account_mails_an_hour_reach_one_address(
    limited_app: FastAPI, limited_settings: Settings, mailbox: Mailbox
) -> None:
    for email in ("victim@example.com", "other@example.com"):  # each queues its verification mail
        body = {"email": email, "password": "SecurePass123!", "full_name": "Someone", "company_name": "X"}
        assert (await _post(limited_app, REGISTER, body)).status_code == 201

    answers = [await _forgot(limited_app, "victim@example.com") for _ in range(5)]
    other = await _forgot(limited_app, "other@example.com")
    await run_burst_worker(limited_settings)

    # Every request answered exactly as before; only the mails stopped.
    assert {(r.status_code, r.json()["message"]) for r in [*answers, other]} == {(200, FORGOT_MESSAGE)}
    subjects = [m["Subject"] for m in mailbox.to("victim@example.com")]
    assert sorted(subjects) == ["Reset your password", "Reset your password", "Verify your email address"]
    assert sorted(m["Subject"] for m in mailbox.to("other@example.com")) == [
        "Reset your password",
        "Verify your email address",
    ]


async def _greeting_for(client: httpx.AsyncClient, mailbox: Mailbox, run_tasks, full_name: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        REGISTER,
        json={"email": "dev@example.com", "password": "SecurePass123!", "full_name": full_name, "company_name": "X"},
    )
    assert response.status_code == 201, response.text
    await run_tasks()
    body = Mailbox.body(mailbox.last_to("dev@example.com")).replace("\r\n", "\n")
    greeting, _, rest = body.partition("\n\n")
    assert rest.startswith("Confirm your email address by opening this link:\n\nhttp://testserver/api/v1/auth/")
    return greeting


@pytest.mark.parametrize(
    "full_name",
    [
        "Claim your refund at http://evil.example/pay",
        "Visit evil.example now",
        "Jane\n\nYour account is suspended",
        "Jane\r\nBcc: someone@example.com",
        "support@evil.example",
        "Call 0800 123 456",
        "Jane \u202eelgooG",  # a bidi override that reverses what follows
        "<a href='x'>Jane</a>",
    ],
)
async def test_a_name_carrying_links_lines_or_symbols_is_left_out_of_the_mail(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    run_tasks,
    full_name: str,  # type: ignore[no-untyped-def]
) -> None:
    assert await _greeting_for(client, mailbox, run_tasks, full_name) == "Hello,"


@pytest.mark.parametrize(
    ("full_name", "greeting"),
    [
        ("Developer", "Hello Developer,"),
        ("José María O'Neil-Smith", "Hello José María O'Neil-Smith,"),
        ("J. R. R. Tolkien", "Hello J. R. R. Tolkien,"),
        ("  Ada    Lovelace ", "Hello Ada Lovelace,"),
        ("Maximilian Alexander Bartholomew Fitzgerald-Montgomery", "Hello Maximilian Alexander Bartholomew…,"),
    ],
)
async def test_a_plain_name_is_greeted_and_a_long_one_cut_at_a_word(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    run_tasks,
    full_name: str,
    greeting: str,  # type: ignore[no-untyped-def]
) -> None:
    assert await _greeting_for(client, mailbox, run_tasks, full_name) == greeting


async def _mailed_links(client: httpx.AsyncClient, mailbox: Mailbox, run_tasks) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The verification link of a new account, then the reset link it asks for."""
    registered = await client.post(
        REGISTER,
        json={"email": "dev@example.com", "password": "SecurePass123!", "full_name": "Dev", "company_name": "X"},
    )
    assert registered.status_code == 201, registered.text
    await run_tasks()
    [verify] = mailbox.links_to("dev@example.com")
    forgot = await client.post(FORGOT, json={"email": "dev@example.com"}, headers={"X-Forwarded-For": next(_addresses)})
    assert forgot.status_code == 200, forgot.text
    await run_tasks()
    assert mailbox.last_to("dev@example.com")["Subject"] == "Reset your password"
    reset = [link for link in mailbox.links_to("dev@example.com") if "token=" in link]
    assert len(reset) == 1, reset
    return verify, reset[0]


async def test_mailed_links_open_the_api_pages_when_this_server_has_no_dashboard(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    run_tasks,
    settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    assert not settings.dashboard_built
    verify, reset = await _mailed_links(client, mailbox, run_tasks)
    assert verify.startswith("http://testserver/api/v1/auth/verify-email/?token=")
    assert reset.startswith("http://testserver/api/v1/auth/reset-password/?token=")
    page = await client.get(reset.removeprefix("http://testserver"))
    assert page.status_code == 200, page.text  # the API's own check of the link
    assert page.json() == {
        "message": 'The link is valid. POST {"token", "new_password"} to this URL to choose a new password.'
    }


async def test_mailed_links_open_the_dashboard_pages_when_this_server_serves_it(
    client: httpx.AsyncClient,
    mailbox: Mailbox,
    run_tasks,
    settings: Settings,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>CoExAI</title>")
    settings.dashboard_dir = dist
    verify, reset = await _mailed_links(client, mailbox, run_tasks)
    assert verify.startswith("http://testserver/dashboard/verify-email?token=")
    assert reset.startswith("http://testserver/dashboard/reset-password?token=")
    token = reset.partition("?token=")[2]
    page = await client.get(reset.removeprefix("http://testserver"))
    assert page.status_code == 200 and page.text == "<!doctype html><title>CoExAI</title>"  # the dashboard's page
    # The token is the one the dashboard's page sends to the API.
    changed = await client.post("/api/v1/auth/reset-password/", json={"token": token, "new_password": "NewSecure456!"})
    assert changed.status_code == 200, changed.text
    verified = await client.get("/api/v1/auth/verify-email/", params={"token": verify.partition("?token=")[2]})
    assert verified.status_code == 200, verified.text
