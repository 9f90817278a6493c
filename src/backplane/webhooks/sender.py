"""One HTTP attempt of a delivery: to a checked address only (`netguard`), within a total deadline,
reading at most the first 2 KB of the answer. It never raises for anything the target does.

Attempts go out through aiohttp, not the httpx the rest of the code uses: they are the task worker's
hot path, and httpx's own request handling cost more CPU per request than everything else an attempt
does (in `bench/webhooks.py`, the worker's CPU per delivery fell from 2.9-3.1 ms to 1.0-1.6 ms with
aiohttp). aiohttp came with aiobotocore already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import aiohttp

from backplane.core import tracing
from backplane.core.config import Settings
from backplane.core.db import utcnow
from backplane.core.netguard import BlockedTarget, check_url, customer_session

if TYPE_CHECKING:
    from backplane.webhooks.delivery import Claim

logger = logging.getLogger(__name__)

RESPONSE_BODY_LIMIT = 2048


@dataclass(frozen=True, slots=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None  # seconds the receiver asked us to wait (Retry-After), if any

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver says the endpoint is no more."""
        return self.status_code == 410


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    Anything else, or a time already past, is None: the header is a hint, never a reason to fail.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC without saying so
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - now).total_seconds()
    return seconds if seconds > 0 else None


def new_client(settings: Settings) -> aiohttp.ClientSession:
    """An HTTP client for attempts (closed with `close()`); made inside a running event loop."""
    return customer_session(settings.webhook_timeout_seconds, allow_private=settings.webhook_allow_private_targets)


async def send(
    client: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    settings: Settings,
    claim: Claim | None = None,
) -> AttemptResult:
    """POST `body`; a 2xx answer is success, anything else (redirects included) a failure.

    With tracing on, the attempt of `claim` is a `webhooks.deliver` span in its delivery's trace, and
    the receiver gets that span's `traceparent`."""
    if claim is None:
        return await _send(client, url, body, headers, settings=settings)
    with tracing.span(
        "webhooks.deliver",
        parent=claim.trace_context,
        kind="producer",
        delivery_id=claim.delivery_id,
        endpoint_id=claim.endpoint_id,
        attempt=claim.number,
    ):
        return await _send(client, url, body, tracing.headers(headers), settings=settings)


async def _send(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], *, settings: Settings
) -> AttemptResult:
    started = time.monotonic()
    status_code: int | None = None
    text: str | None = None
    error: str | None = None
    retry_after: str | None = None
    location: str | None = None
    timeout = settings.webhook_timeout_seconds
    try:
        check_url(url, allow_private=settings.webhook_allow_private_targets)
        # A timeout per read would let a target that drips one byte at a time hold a worker: the
        # deadline is around everything.
        async with asyncio.timeout(timeout):
            # The session asks for the answer uncompressed (`customer_session`): its start is kept as text.
            async with client.post(url, data=body, headers=headers, allow_redirects=False) as response:
                status_code = response.status
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                text = await _read_start(response.content)
    except BlockedTarget as exc:
        error = f"Not sent: {exc}"
    except TimeoutError:  # aiohttp's own time-outs are TimeoutErrors too
        error = f"Timed out after {timeout:g} s."
    except aiohttp.ClientConnectorError as exc:
        error = f"Could not connect: {exc or type(exc).__name__}."
    except (aiohttp.ClientError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception:
        # An attempt must end in a logged result, or its delivery would be requeued without end;
        # the traceback goes to our log, not to the customer's delivery log.
        logger.exception("webhook attempt to %s failed unexpectedly", url)
        error = "Not sent: an internal error occurred; the attempt will be retried."
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    if error is None and not succeeded:
        if status_code is not None and 300 <= status_code < 400:
            target = f" to {location[:200]}" if location else ""
            error = f"The endpoint answered HTTP {status_code}, a redirect{target}; redirects are not followed."
        else:
            error = f"The endpoint answered HTTP {status_code}; only 2xx counts as delivered."
    return AttemptResult(
        succeeded=succeeded,
        status_code=status_code,
        response_body=text,
        error=error[:500] if error else None,
        duration_ms=duration_ms,
        retry_after=None if succeeded else parse_retry_after(retry_after, utcnow()),
    )


async def _read_start(content: aiohttp.StreamReader) -> str:
    """The answer's first RESPONSE_BODY_LIMIT bytes, as text; the rest is never read (the connection
    then closes instead of going back to the pool)."""
    received = bytearray()
    while len(received) < RESPONSE_BODY_LIMIT:
        chunk = await content.read(RESPONSE_BODY_LIMIT - len(received))
        if not chunk:
            break
        received += chunk
    # PostgreSQL text cannot hold NUL; the log keeps readable text, not the exact bytes.
    return bytes(received).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
