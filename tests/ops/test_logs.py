"""Log lines: JSON with what they were written for, and no secret a full flow handled, at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backplane.core import logs
from backplane.core.config import EmailSettings, Environment, Settings
from backplane.core.email import send_email
from backplane.core.logs import JsonFormatter, handler_for, log_context, logging_config, redact
from tests.auth.helpers import mailed_token
from tests.fixtures.auth import Api
from tests.fixtures.smtp import Mailbox
from tests.jobs.conftest import JobsWorker, wait_for
from tests.licenses.conftest import acquire
from tests.webhooks.conftest import Receiver, create_webhook, dispatch_and_deliver, eventually, worker_context

PASSWORD = "Correct-Horse-7731!"
NEW_PASSWORD = "Battery-Staple-9204?"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every line any logger writes, at DEBUG, as `backplane serve` and `worker` would write it (JSON)."""
    stream = io.StringIO()
    handler = handler_for(stream, "json")
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    level, propagate = root.level, access.propagate
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    access.propagate = True  # as `backplane serve` has it (the receiver's uvicorn, in this process, did not)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        access.propagate = propagate


def with_access_log(app: Any) -> Any:
    """The app as uvicorn runs it: uvicorn logs each request's line from the `send` it gives the app."""

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_log(message: Any) -> None:
            if message["type"] == "http.response.start":
                target = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
                access = logging.getLogger("uvicorn.access")
                access.info(
                    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", scope["method"], target, "1.1", message["status"]
                )
            await send(message)

        await app(scope, receive, send_and_log)

    return logged


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=with_access_log(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_full_flow_logs_none_of_its_secrets(
    api: Api,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    mailbox: Mailbox,
    run_tasks: Any,
    captured: io.StringIO,
    tmp_path: Path,
) -> None:
    secrets: dict[str, str] = {"password": PASSWORD, "new password": NEW_PASSWORD}
    account = await api.register("flow@example.com", password=PASSWORD)
    secrets |= {"access": account.access, "refresh": account.refresh}
    login = await client.post("/v1/auth/login", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()["tokens"]
    secrets |= {"platform access": tokens["access_token"], "platform refresh": tokens["refresh_token"]}
    key = await account.create_key(scopes=["read", "write", "admin"])
    secrets["api key"] = key["key"]
    by_key = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/v1/users/me", headers=by_key)).status_code == 200

    license_ = await api.issue_license(account, seats=2)
    secrets["license key"] = license_["key_string"]
    assert (await acquire(account, license_["key_string"])).status_code in (200, 201)

    hook = await create_webhook(client, by_key, receiver.url("/flow"), ["job.completed"])
    secrets["webhook secret"] = hook["secret"]
    worker = await JobsWorker(settings).start()
    try:
        created = await client.post("/v1/jobs", json={"agent_id": "test-noop"}, headers=by_key)
        assert created.status_code == 201, created.text
        assert (await wait_for(client, account, created.json()["id"]))["status"] == "completed"
        failing = await client.post(
            "/v1/jobs", json={"agent_id": "test-fail", "input_data": {"message": "boom"}}, headers=by_key
        )
        job_id = failing.json()["id"]
        assert (await wait_for(client, account, job_id))["status"] == "dead_letter"
    finally:
        await worker.stop()
    async with worker_context(settings) as ctx:
        await dispatch_and_deliver(ctx)
    await eventually(lambda: len(receiver.to("/flow")) == 1, "the job.completed delivery")

    await run_tasks()  # the verification mail
    assert (await client.post("/api/v1/auth/forgot-password/", json={"email": account.email})).status_code == 200
    await run_tasks()
    reset_token = mailed_token(mailbox, account.email, "reset-password")
    secrets["reset token"] = reset_token
    reset = await client.post("/api/v1/auth/reset-password/", json={"token": reset_token, "new_password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    # The same mail where no SMTP server is configured, and the access log line of a mailed link.
    outbox = EmailSettings(smtp_host=None, email_outbox_dir=tmp_path / "outbox")
    await send_email(outbox, account.email, "Reset your password", f"/reset-password/?token={reset_token}")
    assert [reset_token in p.read_text() for p in (tmp_path / "outbox").iterdir()] == [True]
    assert (await client.get("/api/v1/auth/reset-password/", params={"token": reset_token})).status_code == 400
    logging.getLogger("backplane.test").debug("settings: %r", settings.model_dump())

    output = captured.getvalue()
    leaked = [name for name, secret in secrets.items() if secret in output]
    assert leaked == []
    lines = [json.loads(line) for line in output.splitlines()]
    assert {"time", "level", "logger", "message"} <= lines[0].keys()
    requests = [line for line in lines if line["logger"] == "uvicorn.access" and line["client"] == "127.0.0.1:5000"]
    assert [line for line in requests if not line.get("request_id", "").startswith("req_")] == []
    assert any(line.get("organization_id") == account.organization_id for line in requests)
    assert not any("organization_id" in line for line in requests if line["path"] == "/api/v1/auth/register/")
    [used_link] = [line for line in requests if line["path"].startswith("/api/v1/auth/reset-password/?")]
    assert (used_link["method"], used_link["status"], used_link["path"]) == (
        "GET",
        400,
        "/api/v1/auth/reset-password/?token=[REDACTED]",
    )
    failed = [line for line in lines if line.get("job_id") == job_id and line["level"] == "WARNING"]
    assert len(failed) == settings.job_max_attempts
    assert failed[0]["organization_id"] == account.organization_id
    assert "boom" in failed[0]["exception"]
    assert "delivery_id" in next(line for line in lines if line["logger"] == "backplane.webhooks.delivery")


def test_an_exception_is_logged_with_its_traceback_redacted_and_its_context() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("backplane.test.exceptions")
    logger.addHandler(handler := handler_for(stream, "json"))
    try:
        with log_context(job_id="job_1", delivery_id="whd_2"):
            try:
                raise RuntimeError("could not connect to postgresql://app:s3cr3t-pw@db/app")
            except RuntimeError:
                logger.exception("Authorization: Bearer %s failed", "coexai_live_abcdefABCDEF0123")
    finally:
        logger.removeHandler(handler)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["level"], line["job_id"], line["delivery_id"]) == ("ERROR", "job_1", "whd_2")
    assert line["message"] == "Authorization: Bearer [REDACTED] failed"
    assert "RuntimeError" in line["exception"]
    assert "s3cr3t-pw" not in line["exception"]
    assert "request_id" not in line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            '{"password": "hunter2hunter2", "email": "a@example.com"}',
            '{"password": "[REDACTED]", "email": "a@example.com"}',
        ),
        (
            "signing_secret=abc reset_token: xyz request_id=req_1",
            "signing_secret=[REDACTED] reset_token: [REDACTED] request_id=req_1",
        ),
        ("POST /v1/invitations/AbCdEfGhIjKlMnOpQrSt/accept", "POST /v1/invitations/[REDACTED]/accept"),
        ("GET /v1/invitations/inv_0123456789abcdef0123", "GET /v1/invitations/inv_0123456789abcdef0123"),
        ("/oauth/callback?code=abc&state=eyJa.eyJb.c", "/oauth/callback?code=[REDACTED]&state=[REDACTED]"),
        ("whsec_QUJDREVGR0g= and sk_live_51Habc", "whsec_[REDACTED] and sk_live_[REDACTED]"),
        ("tokens=3 seats=2 job_id=job_1", "tokens=3 seats=2 job_id=job_1"),
    ],
)
def test_redaction_masks_secrets_and_keeps_the_rest(text: str, shown: str) -> None:
    assert redact(text) == shown


def _every_pattern(text: str) -> str:
    """Redaction as it was first written: every pattern scans every line."""
    for pattern, replacement, _ in logs._PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_PIECES = [
    "Bearer abc.def",
    "basic Zm9vOmJhcg==",
    "BEARER x",
    "eyJhbGciOi.eyJzdWIi.sig",
    "coexai_live_abcDEF012",
    "coexai_test_x",
    "whsec_QUJD+/=",
    "sk_live_51H",
    "rk_test_9",
    "postgresql://u:pw@db/x",
    "https://h/p",
    "?token=t1",
    "&Code=9",
    "?STATE=s",
    "?api_key=k",
    "/invitations/AbCdEfGhIjKlMnOpQrSt",
    "/invitations/inv_01234567890123456",
    '"password": "p"',
    "Signing_Secret=abc",
    "reset_token: xyz",
    "APIKEY=z",
    "Authorization: Token q",
    "passwd=1",
    "x-backplane-signature: t=1,v1=ab",
    'PASSWORD="q"',
    "pa\u017f\u017fword=s",
    "tokens=3",
    "seats=2",
    "job_id=job_1",
    "POST /api/v1/licenses/sessions/0b7c/heartbeat HTTP/1.1",
    "200",
    "-",
    " ",
    "=",
    "&",
    "?",
    ":",
    '"',
    "'",
    "K\u212ay=1",
]


def test_redaction_skips_only_the_patterns_a_line_cannot_match() -> None:
    """Each pattern scans a line only if the line holds a literal every match of the pattern holds;
    on thousands of lines made of secrets and ordinary pieces the result equals scanning them all."""
    rng = random.Random(15)
    lines = [" ".join(rng.choices(_PIECES, k=rng.randint(1, 6))) for _ in range(5_000)]
    lines += ["".join(rng.choices(_PIECES, k=rng.randint(1, 4))) for _ in range(5_000)]
    for line in lines:
        assert redact(line) == _every_pattern(line), line


def test_the_log_format_defaults_to_json_in_production_only(settings: Settings) -> None:
    assert settings.log_format_effective == "text"
    assert settings.model_copy(update={"log_format": "json"}).log_format_effective == "json"
    production = settings.model_copy(update={"environment": Environment.production})
    assert production.log_format_effective == "json"
    assert production.model_copy(update={"log_format": "text"}).log_format_effective == "text"


def test_uvicorn_takes_the_configuration_as_it_is() -> None:
    import uvicorn

    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        uvicorn.Config("backplane.app:create_app", log_config=logging_config("json")).configure_logging()
        root, *uvicorns = loggers
        assert all(logger.propagate and not logger.handlers for logger in uvicorns)
        [handler] = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert {type(f).__name__ for f in handler.filters} == {"ContextFilter", "RedactingFilter"}
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_text_lines_carry_the_same_context_for_a_terminal() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("backplane.test.text")
    logger.addHandler(handler := handler_for(stream, "text"))
    try:
        with log_context(organization_id="org-1", job_id="job_1"):
            logger.warning("retrying with password=%s", "hunter2hunter2")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith(
        " WARNING backplane.test.text [organization_id=org-1 job_id=job_1]: retrying with password=[REDACTED]"
    )
    assert outside.endswith(" WARNING backplane.test.text: outside")


def test_routine_cron_runs_are_not_logged_but_their_failures_and_other_jobs_are() -> None:
    from backplane.core.logs import RoutineRuns
    from backplane.workers.settings import ROUTINE_CRONS

    quiet = RoutineRuns(ROUTINE_CRONS)

    def record(level: int, message: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("arq.worker", level, __file__, 1, message, args, None)

    assert not quiet.filter(record(logging.INFO, "%6.2fs → %s(%s)%s", 0.01, "jobs.sweep", "", ""))
    assert not quiet.filter(record(logging.INFO, "%6.2fs ← %s ● %s", 0.01, "webhooks.dispatch", "0"))
    assert quiet.filter(record(logging.WARNING, "%6.2fs ! %s failed, %s: %s", 0.01, "jobs.sweep", "E", "x"))
    assert quiet.filter(record(logging.INFO, "%6.2fs → %s(%s)%s", 0.01, "job_1:jobs.run", "", ""))
    assert quiet.filter(record(logging.INFO, "Starting worker for %d functions: %s", 3, "a, b"))
