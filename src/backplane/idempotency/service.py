"""`Idempotency-Key` on platform POSTs: a repeat returns the first response instead of doing the work again.

How it works (in the manner of Stripe's idempotent requests):
1. The route's access requirement (`access.requirements`), once the caller passed it, calls
   `claim_for`, which claims the key for that caller in its own short transaction: a row with the
   request's fingerprint and a lock. A key is the caller's own (the API key, or the user, within one
   organization and mode): the same key from another caller is that caller's fresh request, and is
   authorized as such before anything is replayed.
   - no row (or one older than 24 hours): the request goes ahead;
   - a finished row with the same fingerprint: its stored response is sent back (`Idempotent-Replayed: true`);
   - a different fingerprint: 422 `IDEMPOTENCY_KEY_REUSED`;
   - a row still locked (the first request is in flight): 409 `IDEMPOTENCY_KEY_IN_USE`.
2. `IdempotencyMiddleware` stores the response once it is produced. A 5xx, 409 or 429 is not stored
   (the key is released so a retry can do the work); other 4xx answers are stored like successes.
A test-mode key never sees a live-mode response. Stored responses are encrypted at rest
(`core.crypto`, ENCRYPTION_KEYS): some carry a secret shown once (a new API key, a webhook secret).

The fingerprint covers the method, path, query and body. Streamed uploads (multipart, raw bytes)
are not buffered to be hashed: their fingerprint covers the content type and length instead.
The work commits before the response is stored; should the process die in between, the lock
expires after LOCK_SECONDS and a retry does the work again (the one case that is not exactly-once).
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backplane.core.crypto import DecryptionFailed, Encryptor
from backplane.core.db import unit_of_work, utcnow
from backplane.core.errors import AppError, InvalidInput
from backplane.idempotency.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "idempotency-key"
RETENTION = timedelta(hours=24)
LOCK_SECONDS = 300
MAX_STORED_BODY = 1024 * 1024
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as Stripe and the IETF draft expect
_STREAMED = ("multipart/form-data", "application/octet-stream")
_REPLAYED_HEADERS = ("content-type", "location")
# Answers that say "not now" rather than "done": a retry of the same request may succeed later.
_NOT_KEPT = frozenset({409, 429})


class IdempotencyKeyInUse(AppError):
    status_code, code, title = 409, "IDEMPOTENCY_KEY_IN_USE", "Request in flight"
    default_message = "A request with this Idempotency-Key is still being processed. Retry shortly."


class IdempotencyKeyReused(AppError):
    status_code, code, title = 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency key reused"
    default_message = "This Idempotency-Key was used with a different request. Use a new key for a new request."


class IdempotentReplay(Exception):
    def __init__(self, status_code: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code, self.body, self.headers = status_code, body, headers


async def _fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() in _STREAMED:
        digest.update(f"{content_type.split(';')[0]} {request.headers.get('content-length', '')}".encode())
    else:
        digest.update(await request.body())  # already read (and cached) for a JSON body
    return digest.hexdigest()


Claim = tuple[Any, bool, str, str]  # organization id, livemode, caller, key: the row's primary key


async def _claim(session: AsyncSession, claim: Claim, fingerprint: str) -> IdempotencyKey | None:
    """Our new row (None: go ahead), or the existing row for this key."""
    organization_id, livemode, caller, key = claim
    now = utcnow()
    this_key = (
        IdempotencyKey.organization_id == organization_id,
        IdempotencyKey.livemode.is_(livemode),
        IdempotencyKey.caller == caller,
        IdempotencyKey.key == key,
    )
    await session.execute(delete(IdempotencyKey).where(*this_key, IdempotencyKey.created_at < now - RETENTION))
    inserted = await session.execute(
        insert(IdempotencyKey)
        .values(
            organization_id=organization_id,
            livemode=livemode,
            caller=caller,
            key=key,
            fingerprint=fingerprint,
            locked_until=now + timedelta(seconds=LOCK_SECONDS),
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if inserted.scalar_one_or_none() is not None:
        return None
    stmt = select(IdempotencyKey).where(*this_key).with_for_update()
    row = (await session.execute(stmt)).scalar_one()
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={"idempotency_key": key})
    if row.response_status is not None:
        return row
    if row.locked_until is not None and row.locked_until > now:
        raise IdempotencyKeyInUse(details={"idempotency_key": key})
    row.locked_until = now + timedelta(seconds=LOCK_SECONDS)  # the first request died: take over
    return None


async def claim_for(request: Request, organization_id: Any, livemode: bool, caller: str) -> None:
    """Claim the request's `Idempotency-Key` (POST only) for this caller, or replay its first response.

    Called by the route's access requirement once the caller passed it, never before."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST" or organization_id is None:
        return
    if not _KEY.match(key):
        raise InvalidInput({"Idempotency-Key": ["Use 1 to 255 printable ASCII characters, such as a UUID."]})
    fingerprint = await _fingerprint(request)
    claim: Claim = (organization_id, livemode, caller, key)
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    encryptor: Encryptor = request.app.state.encryptor
    async with unit_of_work(sessionmaker) as session:
        done = await _claim(session, claim, fingerprint)
        if done is not None:
            try:
                body = encryptor.decrypt(done.response_body) if done.response_body else b""
            except DecryptionFailed:  # its key was retired: the first response is gone, do the work again
                logger.warning("a stored response for Idempotency-Key %s could not be decrypted; redoing", key)
                await session.delete(done)
                await session.flush()
                done = await _claim(session, claim, fingerprint)
                assert done is None
            else:
                raise IdempotentReplay(done.response_status or 200, body, done.response_headers or {})
    request.state.idempotency = claim


async def _store(
    sessionmaker: async_sessionmaker[AsyncSession],
    encryptor: Encryptor,
    claim: Claim,
    status: int,
    body: bytes,
    headers: dict[str, str],
) -> None:
    async with unit_of_work(sessionmaker) as session:
        row = await session.get(IdempotencyKey, claim, with_for_update=True)
        if row is None:
            return
        if status >= 500 or status in _NOT_KEPT or len(body) > MAX_STORED_BODY:
            await session.delete(row)  # not a result worth replaying: let a retry do the work
            return
        row.response_status = status
        row.response_body = encryptor.encrypt(body)
        row.response_headers = headers
        row.locked_until = None


def _names_key(scope: Scope) -> bool:
    """Whether the request sends an `Idempotency-Key` (ASGI header names arrive lower case, as `HEADER`)."""
    key = HEADER.encode()
    return any(name == key for name, _ in scope["headers"])


class IdempotencyMiddleware:
    """Keeps the response of a request whose `Idempotency-Key` the `idempotency` dependency claimed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _names_key(scope):
            await self.app(scope, receive, send)  # nothing the dependency could claim: nothing to keep
            return
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        size = 0
        claimed = False

        async def capture(message: Message) -> None:
            nonlocal status, size, claimed
            if message["type"] == "http.response.start":
                # Only a request whose key the dependency claimed keeps a copy of its response.
                claimed = scope.get("state", {}).get("idempotency") is not None
                status = message["status"]
                for name, value in message.get("headers", []):
                    lowered = name.decode("latin-1").lower()
                    if lowered in _REPLAYED_HEADERS:
                        headers[lowered] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and claimed and size <= MAX_STORED_BODY:
                body = message.get("body", b"")
                size += len(body)
                chunks.append(body)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            claim = scope.get("state", {}).get("idempotency")
            if claim is not None:
                try:
                    state = scope["app"].state
                    await _store(state.sessionmaker, state.encryptor, claim, status, b"".join(chunks), headers)
                except Exception:  # the response is already sent; a retry will find the key locked, then free
                    logger.exception("could not store the response for Idempotency-Key %s", claim[3])


def install_idempotency(app: FastAPI) -> None:
    async def on_replay(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, IdempotentReplay)
        headers = {**exc.headers, "Idempotent-Replayed": "true"}
        media_type = headers.pop("content-type", None)
        return Response(exc.body, status_code=exc.status_code, headers=headers, media_type=media_type)

    app.add_exception_handler(IdempotentReplay, on_replay)
    app.add_middleware(IdempotencyMiddleware)


async def reencrypt_responses(session: AsyncSession, encryptor: Encryptor) -> int:
    """Stored responses encrypted again with the newest key (`backplane secrets rotate`); how many. One no
    key reads any more (its key was retired) is deleted: its request is done again if retried."""
    count = 0
    rows = await session.execute(
        select(IdempotencyKey).where(IdempotencyKey.response_body.is_not(None)).with_for_update()
    )
    for row in rows.scalars():
        assert row.response_body is not None
        try:
            row.response_body = encryptor.rotate(row.response_body)
        except DecryptionFailed:
            await session.delete(row)
            continue
        count += 1
    await session.flush()
    return count


async def purge_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Delete keys older than the 24 hours they are kept for; the number deleted."""
    async with unit_of_work(sessionmaker) as session:
        result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - RETENTION))
        return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_expired_task(ctx: dict[str, Any]) -> int:
    """`idempotency.purge` (hourly cron)."""
    return await purge_expired(ctx["sessionmaker"])
