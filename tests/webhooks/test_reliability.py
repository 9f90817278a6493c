"""What keeps deliveries honest: secret rotation, 410 Gone, Retry-After, jitter, disabling a failing
endpoint, receivers that fail on purpose under a real worker, isolation from slow or dead receivers,
and dispatch the moment an event commits."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backplane.core.config import Settings
from backplane.core.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from backplane.events.models import Event
from backplane.events.service import NEW_EVENTS_KEY, record_event
from backplane.webhooks import delivery as flow
from backplane.webhooks.models import WebhookDelivery, WebhookEndpoint
from backplane.webhooks.sender import AttemptResult, parse_retry_after
from backplane.webhooks.signing import new_secret
from backplane.webhooks.tasks import dispatch_task
from tests.fixtures.auth import Account, Api
from tests.fixtures.http_server import serve
from tests.fixtures.smtp import Mailbox
from tests.webhooks.conftest import (
    Answer,
    Receiver,
    at,
    attempt_at,
    bearer,
    create_webhook,
    deliveries,
    detail,
    dispatch_and_deliver,
    eventually,
    queued_jobs,
    record,
    run_due,
    running_worker,
    verify_guide,
    worker_context,
)

JOB = {"id": "job_3f9c2a7b1e4d5c6a7b8c9d0e", "status": "completed"}
DISABLED_SUBJECT = "Webhook disabled: "


async def set_endpoint(settings: Settings, endpoint_id: str, **values: Any) -> None:
    """Change an endpoint behind the API's back (time passing, DNS changing)."""
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            await session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values))
    finally:
        await engine.dispose()


async def get_hook(client: httpx.AsyncClient, account: Account, hook: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/{hook['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def disabled_mail(mailbox: Mailbox) -> list[tuple[str, str, str]]:
    return [
        (str(m["To"]), str(m["Subject"]), Mailbox.body(m))
        for m in mailbox.messages
        if str(m["Subject"]).startswith(DISABLED_SUBJECT)
    ]


# --- secret rotation ------------------------------------------------------------------------------


async def test_after_a_rotation_both_secrets_sign_for_24_hours(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=account.headers)
    old, new = hook["secret"], rotated.json()["secret"]

    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    [request] = receiver.received
    body = request.body.decode()
    # The guide's verify_webhook: the main header is the new secret's, the old one has its own header.
    assert verify_guide(body, request.headers["x-coexai-signature"], new)
    assert not verify_guide(body, request.headers["x-coexai-signature"], old)
    assert verify_guide(body, request.headers["x-coexai-signature-previous"], old)
    assert not verify_guide(body, request.headers["x-coexai-signature-previous"], new)
    # Standard Webhooks: one `v1,` value per secret; a receiver with either secret accepts it.
    assert [part.split(",")[0] for part in request.headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)

    # 24 hours later the old secret signs nothing any more.
    await set_endpoint(settings, hook["id"], previous_secret_expires_at=utcnow() - timedelta(seconds=1))
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    later = receiver.received[-1]
    assert "x-coexai-signature-previous" not in later.headers
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert verify_guide(later.body.decode(), later.headers["x-coexai-signature"], new)
    assert Webhook(new).verify(later.body, later.headers)["event"] == "job.completed"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(later.body, later.headers)


async def test_rotating_twice_drops_the_oldest_secret_and_test_pings_are_signed_alike(
    api: Api, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"
    second = (await client.post(path, headers=account.headers)).json()["secret"]
    third = (await client.post(path, headers=account.headers)).json()["secret"]
    result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert result["status"] == "succeeded"
    [request] = receiver.received
    assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], third)
    assert verify_guide(request.body.decode(), request.headers["x-coexai-signature-previous"], second)
    assert Webhook(second).verify(request.body, request.headers) == result["payload"]
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(request.body, request.headers)


# --- 410 Gone -------------------------------------------------------------------------------------


async def test_410_gone_disables_the_endpoint_at_once(
    api: Api,
    client: httpx.AsyncClient,
    receiver: Receiver,
    settings: Settings,
    worker_ctx: dict[str, Any],
    mailbox: Mailbox,
) -> None:
    owner = await api.register()
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    hook = await create_webhook(client, owner, receiver.url("/gone"), ["job.failed", "job.completed"])
    other = await create_webhook(client, owner, receiver.url("/fine"), ["job.completed"])

    # One delivery waits for its retry...
    receiver.answer_on("/gone", 500)
    waiting_event = await record(settings, owner.organization_id, "job.failed", {"id": "job_1"})
    await dispatch_and_deliver(worker_ctx)
    [waiting] = await deliveries(client, owner, hook)
    assert waiting["status"] == "pending"
    # ... when the receiver answers 410 Gone to the next one.
    receiver.answer_on("/gone", Answer(410, b"no such hook"))
    gone_event = await record(settings, owner.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)

    found = await get_hook(client, owner, hook)
    assert found["enabled"] is False
    stamp = at(found["disabled_at"])
    assert found["disabled_reason"] == (
        f"The endpoint answered 410 Gone at {stamp.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}."
    )
    gone, ended = await deliveries(client, owner, hook)
    assert (gone["event_id"], gone["status"], gone["attempt_count"], gone["last_status_code"]) == (
        gone_event,
        "failed",
        1,
        410,
    )
    assert gone["next_attempt_at"] is None
    [attempt] = (await detail(client, owner, hook, gone["id"]))["attempts"]
    assert (attempt["status_code"], attempt["response_body"]) == (410, "no such hook")
    assert (ended["event_id"], ended["status"], ended["next_attempt_at"]) == (waiting_event, "failed", None)
    assert f"webhooks.deliver:{gone['id']}:2" not in await queued_jobs(worker_ctx["redis"])

    # No more attempts: the waiting retry's job finds nothing to do; new events skip the endpoint.
    sent_before = len(receiver.to("/gone"))
    assert await attempt_at(worker_ctx, waiting["id"], at(waiting["next_attempt_at"])) is None
    await record(settings, owner.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    assert len(receiver.to("/gone")) == sent_before == 2
    assert len(receiver.to("/fine")) == 2  # the other endpoint goes on
    assert (await get_hook(client, owner, other))["enabled"] is True

    # The owner is told (admins are not), through the email task.
    await run_due(settings, worker_ctx["redis"])
    [(to, subject, body)] = disabled_mail(mailbox)
    assert (to, subject) == (owner.email, f"Webhook disabled: {receiver.url('/gone')}")
    assert hook["id"] in body and found["disabled_reason"] in body
    assert f"PATCH http://testserver/v1/webhooks/{hook['id']}" in body

    # Enabling it again is a fresh start.
    back = await client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=owner.headers)
    assert (back.json()["enabled"], back.json()["disabled_reason"], back.json()["disabled_at"]) == (True, None, None)
    await record(settings, owner.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    assert len(receiver.to("/gone")) == 3


async def test_a_test_ping_answered_410_disables_the_endpoint(
    api: Api, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    receiver.answer(410)
    result = (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=account.headers)).json()
    assert (result["status"], result["last_status_code"]) == ("failed", 410)
    found = await get_hook(client, account, hook)
    assert found["enabled"] is False
    assert found["disabled_reason"].startswith("The endpoint answered 410 Gone at ")


# --- Retry-After and jitter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("3600", timedelta(hours=1)),  # stretches the 5-minute wait
        ("60", timedelta(minutes=5)),  # never shortens it
        ("864000", timedelta(hours=24)),  # 10 days: capped at 24 h
        ("soon", timedelta(minutes=5)),  # unreadable: ignored
        ("-5", timedelta(minutes=5)),
    ],
)
async def test_retry_after_may_stretch_a_wait(
    api: Api,
    client: httpx.AsyncClient,
    receiver: Receiver,
    settings: Settings,
    worker_ctx: dict[str, Any],
    retry_after: str,
    wait: timedelta,
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    receiver.answer(Answer(503, headers={"Retry-After": retry_after}))
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    assert at(sent["next_attempt_at"]) - at(sent["last_attempt_at"]) == wait
    [job_id] = await queued_jobs(worker_ctx["redis"])
    assert job_id == f"webhooks.deliver:{sent['id']}:2"


async def test_retry_after_as_an_http_date_and_the_later_retries_keep_their_spacing(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, worker_ctx: dict[str, Any]
) -> None:
    account = await api.register()
    hook = await create_webhook(client, account, receiver.url())
    when = datetime.now(UTC) + timedelta(hours=2)
    receiver.answer(Answer(429, headers={"Retry-After": format_datetime(when, usegmt=True)}), 500)
    await record(settings, account.organization_id, "job.completed", JOB)
    await dispatch_and_deliver(worker_ctx)
    [sent] = await deliveries(client, account, hook)
    first, second_due = at(sent["last_attempt_at"]), at(sent["next_attempt_at"])
    assert abs(second_due - when.replace(microsecond=0)) < timedelta(seconds=2)
    # The schedule moved back by the stretch: the third attempt keeps its 25 minutes after the second.
    assert await attempt_at(worker_ctx, sent["id"], second_due) == "pending"
    [sent] = await deliveries(client, account, hook)
    assert at(sent["next_attempt_at"]) == second_due + timedelta(minutes=25)
    assert at(sent["next_attempt_at"]) - first > timedelta(minutes=30)


def test_retry_after_values() -> None:
    now = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(" 7 ", now) == 7
    assert parse_retry_after("Mon, 15 Jan 2024 10:31:00 GMT", now) == 60
    assert parse_retry_after("Mon, 15 Jan 2024 10:29:00 GMT", now) is None  # past
    for junk in (None, "", "1.5", "-3", "later", "Mon, 99 Foo 2024", "٣"):
        assert parse_retry_after(junk, now) is None, junk


def test_retries_are_jittered_within_a_tenth_of_their_wait(settings: Settings) -> None:
    jittery = settings.model_copy(update={"webhook_retry_jitter": 0.1})
    first = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    failed = AttemptResult(succeeded=False, status_code=500, response_body="", error="x", duration_ms=3)
    gaps = (timedelta(minutes=5), timedelta(minutes=25), timedelta(minutes=90), timedelta(minutes=240))
    offsets = (timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6))
    for number, (offset, gap) in enumerate(zip(offsets, gaps, strict=True), start=1):
        seen = set()
        for _ in range(20):
            delivery = WebhookDelivery(schedule_start_at=first, max_attempts=5)
            due = flow.next_attempt_at(delivery, number, failed, first + offset, jittery)
            assert first + offset <= due <= first + offset + gap / 10
            seen.add(due)
        assert len(seen) > 1  # really at random
        exact = flow.next_attempt_at(WebhookDelivery(schedule_start_at=first), number, failed, first, settings)
        assert exact == first + offset  # no jitter configured: exactly on the schedule


# --- failing for days -----------------------------------------------------------------------------


async def deliver_event_at(ctx: dict[str, Any], settings: Settings, organization_id: str, when: datetime) -> str | None:
    """Record an event, dispatch it and make its first attempt as if the clock read `when`."""
    await record(settings, organization_id, "job.completed", JOB)
    async with unit_of_work(ctx["sessionmaker"]) as session:
        await flow.dispatch(session, settings, when)
        [delivery_id] = (
            await session.execute(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.attempt_count == 0, WebhookDelivery.event_type == "job.completed"
                )
            )
        ).scalars()
    return await attempt_at(ctx, delivery_id, when)


async def test_an_endpoint_failing_every_attempt_for_5_days_is_disabled_and_its_owners_emailed(
    api: Api,
    client: httpx.AsyncClient,
    receiver: Receiver,
    settings: Settings,
    worker_ctx: dict[str, Any],
    mailbox: Mailbox,
) -> None:
    owner = await api.register()
    co_owner = await api.register()
    await api.add_member(owner, co_owner, "owner")
    admin = await api.register()
    await api.add_member(owner, admin, "admin")
    hook = await create_webhook(client, owner, receiver.url())
    receiver.answer(*([500] * 10))
    start = utcnow()
    org = owner.organization_id

    assert await deliver_event_at(worker_ctx, settings, org, start) == "pending"
    assert await deliver_event_at(worker_ctx, settings, org, start + timedelta(days=4, hours=23)) == "pending"
    assert (await get_hook(client, owner, hook))["enabled"] is True
    assert await deliver_event_at(worker_ctx, settings, org, start + timedelta(days=5)) == "failed"

    found = await get_hook(client, owner, hook)
    stamp = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    reason = f"Every attempt since {stamp} failed (disabled after 5 days of failures)."
    assert (found["enabled"], found["disabled_reason"]) == (False, reason)
    assert {d["status"] for d in await deliveries(client, owner, hook)} == {"failed"}  # the waiting retries too

    await run_due(settings, worker_ctx["redis"])
    sent = disabled_mail(mailbox)
    assert sorted(to for to, _, _ in sent) == sorted([owner.email, co_owner.email])
    assert all(reason in body and hook["id"] in body for _, _, body in sent)


async def test_a_success_ends_the_run_of_failures_and_the_period_is_a_setting(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, mailbox: Mailbox
) -> None:
    impatient = settings.model_copy(update={"webhook_disable_after_seconds": 60})
    owner = await api.register()
    hook = await create_webhook(client, owner, receiver.url())
    org, start = owner.organization_id, utcnow()
    receiver.answer(500, 200, 500, 500)
    async with worker_context(impatient) as ctx:
        assert await deliver_event_at(ctx, impatient, org, start) == "pending"
        assert await deliver_event_at(ctx, impatient, org, start + timedelta(seconds=30)) == "succeeded"
        # 70 s after the first failure, but only 0 s into a new run of failures: still enabled.
        assert await deliver_event_at(ctx, impatient, org, start + timedelta(seconds=70)) == "pending"
        assert (await get_hook(client, owner, hook))["enabled"] is True
        assert await deliver_event_at(ctx, impatient, org, start + timedelta(seconds=130)) == "failed"
        found = await get_hook(client, owner, hook)
        assert found["enabled"] is False
        assert found["disabled_reason"].endswith("failed (disabled after 60 s of failures).")
        await run_due(impatient, ctx["redis"])
    assert [to for to, _, _ in disabled_mail(mailbox)] == [owner.email]


# --- receivers that fail on purpose, under a real worker -------------------------------------------


async def test_receivers_that_fail_on_purpose(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, dead_port: int
) -> None:
    """Retries on a schedule in seconds: 500s then a timeout then success; a redirect to a private
    address (never followed); a port where nothing listens. Each event reaches the deduplicating
    receiver exactly once, although it was sent to it twice (the timed-out attempt did arrive)."""
    fast = settings.model_copy(
        update={"webhook_retry_schedule_seconds": (1.0, 2.0, 3.0, 4.0), "webhook_timeout_seconds": 0.5}
    )
    account = await api.register()
    flaky = await create_webhook(client, account, receiver.url("/flaky"))
    redirecting = await create_webhook(client, account, receiver.url("/redirect"))
    refused = await create_webhook(client, account, f"http://127.0.0.1:{dead_port}/nobody")
    receiver.answer_on("/flaky", Answer(500, b"boom"), Answer(500, b"boom"), Answer(200, delay=2), 200)
    private = receiver.url("/private-target")
    receiver.answer_on("/redirect", *[Answer(302, headers={"Location": private})] * 5)

    async with running_worker(fast):
        event_id = await record(fast, account.organization_id, "job.completed", JOB, wake=True)

        async def all_done() -> bool:
            for hook in (flaky, redirecting, refused):
                found = await deliveries(client, account, hook)
                if len(found) != 1 or found[0]["status"] == "pending":
                    return False
            return True

        await eventually(all_done, "every delivery done")

    offsets = [timedelta(seconds=s) for s in (0, 1, 2, 3, 4)]

    async def logged(hook: dict[str, Any], status: str, count: int) -> list[dict[str, Any]]:
        [sent] = await deliveries(client, account, hook)
        assert (sent["status"], sent["attempt_count"], sent["event_id"]) == (status, count, event_id)
        attempts: list[dict[str, Any]] = (await detail(client, account, hook, sent["id"]))["attempts"]
        times = [at(a["attempted_at"]) for a in attempts]
        for moment, offset in zip(times, offsets, strict=False):  # never before its time
            assert moment - times[0] >= offset - timedelta(milliseconds=5), (times, offsets)
        return attempts

    attempts = await logged(flaky, "succeeded", 4)
    assert [(a["number"], a["succeeded"], a["status_code"], a["response_body"], a["error"]) for a in attempts] == [
        (1, False, 500, "boom", "The endpoint answered HTTP 500; only 2xx counts as delivered."),
        (2, False, 500, "boom", "The endpoint answered HTTP 500; only 2xx counts as delivered."),
        (3, False, None, None, "Timed out after 0.5 s."),
        (4, True, 200, "ok", None),
    ]
    assert attempts[2]["duration_ms"] >= 500
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in attempts)

    attempts = await logged(redirecting, "failed", 5)
    assert {(a["status_code"], a["error"]) for a in attempts} == {
        (302, f"The endpoint answered HTTP 302, a redirect to {private}; redirects are not followed.")
    }
    assert receiver.to("/private-target") == []

    attempts = await logged(refused, "failed", 5)
    assert all(a["status_code"] is None and a["error"].startswith("Could not connect") for a in attempts)

    # Every request carried the same event id and verifiable signatures.
    secrets = {"/flaky": flaky["secret"], "/redirect": redirecting["secret"]}
    assert len(receiver.received) == 4 + 5
    for request in receiver.received:
        assert request.headers["webhook-id"] == event_id
        assert verify_guide(request.body.decode(), request.headers["x-coexai-signature"], secrets[request.path])
        assert Webhook(secrets[request.path]).verify(request.body, request.headers)["event"] == "job.completed"
    await eventually(lambda: len([r for r in receiver.to("/flaky")]) == 4, "the slow answer")
    assert receiver.processed == [event_id]  # arrived twice with a 2xx, acted on once


class SlowReceiver:
    """Holds every request until released; counts how many it holds at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.processed: list[str] = []

    async def handle(self, request: Request) -> Response:
        self.started.append(request.headers["webhook-id"])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.to_thread(self.release.wait)  # the test releases it from its own thread
        finally:
            self.in_flight -= 1
        self.processed.append(request.headers["webhook-id"])
        return Response("ok")


async def test_a_slow_and_a_dead_receiver_never_delay_the_others(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, dead_port: int
) -> None:
    """A worker with 4 slots, at most 2 per endpoint: the slow endpoint holds 2, its other deliveries
    wait outside the worker, the dead one's wait once its breaker opens, and the healthy endpoint gets
    everything meanwhile."""
    patient = settings.model_copy(update={"webhook_timeout_seconds": 60, "webhook_endpoint_concurrency": 2})
    slow = SlowReceiver()
    account = await api.register()
    with serve(Starlette(routes=[Route("/slow", slow.handle, methods=["POST"])]), name="slow-receiver") as server:
        slow_hook = await create_webhook(client, account, f"{server.url}/slow")
        dead_hook = await create_webhook(client, account, f"http://127.0.0.1:{dead_port}/dead")
        await create_webhook(client, account, receiver.url("/healthy"))
        try:
            async with running_worker(patient, max_jobs=4):
                event_ids = [
                    await record(patient, account.organization_id, "job.completed", {"n": n}, wake=True)
                    for n in range(10)
                ]
                await eventually(lambda: sorted(receiver.processed) == sorted(event_ids), "healthy deliveries")
                # All delivered while the slow receiver still holds its first requests, never more than 2.
                assert not slow.release.is_set()
                assert len(slow.started) <= 2 and slow.most_in_flight <= 2

                async def dead_parked() -> bool:
                    # Its breaker opens after 5 failures (the other slot may have had one in flight then):
                    # the rest wait, unattempted, instead of each costing an attempt.
                    dead = await deliveries(client, account, dead_hook)
                    made = sum(d["attempt_count"] for d in dead)
                    shown = (await client.get(f"/v1/webhooks/{dead_hook['id']}", headers=account.headers)).json()
                    return len(dead) == 10 and shown["circuit_state"] == "open" and 5 <= made <= 6

                await eventually(dead_parked, "dead first attempts, then the breaker open")

                slow.release.set()  # the waiting deliveries are woken one by one as slots free up
                await eventually(lambda: sorted(slow.processed) == sorted(event_ids), "slow deliveries")
                assert slow.most_in_flight <= 2
                assert len(slow.started) == 10  # each once

                async def slow_logged() -> bool:
                    found = await deliveries(client, account, slow_hook)
                    return len(found) == 10 and {d["status"] for d in found} == {"succeeded"}

                await eventually(slow_logged, "slow deliveries logged")
        finally:
            slow.release.set()


# --- dispatch the moment an event commits ---------------------------------------------------------


async def test_the_wake_up_is_pushed_once_per_committed_transaction(api: Api, settings: Settings) -> None:
    account = await api.register()
    organization_id = __import__("uuid").UUID(account.organization_id)
    engine = create_engine(settings)
    redis = Redis.from_url(settings.redis.url)
    try:
        sessionmaker = create_sessionmaker(engine, redis=redis)
        async with unit_of_work(sessionmaker) as session:
            for n in range(3):
                record_event(session, organization_id, "job.completed", {"n": n})
            await session.flush()
            assert await redis.llen(NEW_EVENTS_KEY) == 0  # not before the commit
        assert await redis.llen(NEW_EVENTS_KEY) == 1

        await redis.delete(NEW_EVENTS_KEY)
        with pytest.raises(RuntimeError):
            async with unit_of_work(sessionmaker) as session:
                record_event(session, organization_id, "job.failed", {"n": 9})
                await session.flush()
                raise RuntimeError("the change fails")
        assert await redis.llen(NEW_EVENTS_KEY) == 0
        async with unit_of_work(sessionmaker) as session:
            types = (await session.execute(select(Event.type, func.count()).group_by(Event.type))).all()
        assert types == [("job.completed", 3)]  # the rolled-back event never existed
    finally:
        await redis.aclose()
        await engine.dispose()


async def test_events_are_delivered_without_waiting_for_the_cron(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings
) -> None:
    """The running worker has no crons: only the wake-up after the commit can dispatch these."""
    owner = await api.register()
    test_key = await owner.create_key(mode="test", scopes=["admin"])
    await create_webhook(client, bearer(test_key), receiver.url("/sandbox"), ["subscription.created"])
    await create_webhook(client, owner, receiver.url("/live"), ["job.completed"])
    async with running_worker(settings):
        # Recorded by the API's own request (local billing mode: a test-mode subscription)...
        await owner.buy("price_pro_monthly", seats=2)
        await eventually(lambda: len(receiver.to("/sandbox")) == 1, "the subscription event")
        # ... and by a worker-side transaction.
        event_id = await record(settings, owner.organization_id, "job.completed", JOB, wake=True)
        await eventually(lambda: event_id in receiver.processed, "the job event")
    assert receiver.to("/sandbox")[0].json()["event"] == "subscription.created"
    assert [r.headers["webhook-id"] for r in receiver.to("/live")] == [event_id]


# --- SSRF at delivery time ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("http://127.0.0.1:{port}/h", "points at"),
        ("http://10.0.0.1/h", "points at"),
        ("http://169.254.169.254/latest/meta-data/", "points at"),
        ("http://[::1]:{port}/h", "points at"),
        ("http://localhost:{port}/h", "points at"),
        ("http://{host}:{port}/h", "resolves to"),  # DNS changed since creation
    ],
)
async def test_a_delivery_never_reaches_a_private_address(
    api: Api, client: httpx.AsyncClient, receiver: Receiver, settings: Settings, target: str, error: str
) -> None:
    """The URL was public when created; by the time of the delivery it is (or resolves to) a private
    address. The worker refuses it without sending anything, and logs why."""
    public = settings.model_copy(update={"webhook_allow_private_targets": False})
    account = await api.register()
    hook = await create_webhook(client, account, "https://hooks.example.invalid/coexai")
    port = int(receiver.url().split(":")[2].split("/")[0])
    await set_endpoint(settings, hook["id"], url=target.format(port=port, host=socket.gethostname()))
    await record(settings, account.organization_id, "job.completed", JOB)
    async with worker_context(public) as ctx:
        assert await dispatch_task(ctx) == 1
        await run_due(public, ctx["redis"])
    [sent] = await deliveries(client, account, hook)
    [attempt] = (await detail(client, account, hook, sent["id"]))["attempts"]
    assert attempt["error"] == f"Not sent: The URL {error} a private, loopback or link-local address."
    assert (attempt["status_code"], sent["status"]) == (None, "pending")
    assert receiver.received == []
