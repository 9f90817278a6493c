"""What a delivery sends: the JSON body and the headers that sign it.

Body: `{"event", "type", "timestamp", "webhook_id", "data"}`. `event` is the platform guide's name for
the event type and `type` the Standard Webhooks one; both are sent so that either kind of receiver
finds it. The body of an event's delivery is the same on every attempt, so a receiver may
de-duplicate on it (or on `webhook-id`, which is the event id).

Headers:
- `X-CoExAI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the endpoint secret as
  text, exactly as the platform guide verifies it;
- `webhook-id`, `webhook-timestamp`, `webhook-signature` (Standard Webhooks, signed by the
  `standardwebhooks` library over `id.timestamp.body` with the decoded secret), so that a receiver
  can refuse a replayed request;
- for 24 hours after a secret is rotated, the old secret signs too: a second `v1,…` value in
  `webhook-signature`, and `X-CoExAI-Signature-Previous`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # as Svix does; Standard Webhooks asks for 24 to 64
SIGNATURE_HEADER = "X-CoExAI-Signature"
PREVIOUS_SIGNATURE_HEADER = "X-CoExAI-Signature-Previous"  # the replaced secret's, for 24 h after a rotation
USER_AGENT = "Backplane-Webhooks/1.0"
TEST_EVENT = "webhook.test"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def iso_timestamp(moment: datetime) -> str:
    """`2024-01-15T10:30:00.000Z`: the guide's format, as JavaScript's `Date.toISOString()` writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(event_type: str, created_at: datetime, endpoint_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": event_type,
        "type": event_type,
        "timestamp": iso_timestamp(created_at),
        "webhook_id": endpoint_id,
        "data": data,
    }


def job_payload(delivery: Any) -> dict[str, Any]:
    """The body of a job's own notification (a delivery of kind `job`): no endpoint id to name."""
    return payload(delivery.event_type, delivery.created_at, None, delivery.payload or {})


def encode_body(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON that `JSON.stringify(JSON.parse(body))` gives back byte for byte.

    The guide's Express receiver signs `JSON.stringify(req.body)`, not the bytes it received, so the
    body must already be in JavaScript's form: no spaces, non-ASCII left as is, integral numbers
    without `.0`, and object keys that look like array indexes first, in numeric order (JavaScript
    moves them there on parse). No JSON library writes this form (RFC 8785 canonical JSON comes
    closest but sorts every key), hence the small rewrite below. One difference remains: a
    non-integral float below 1e-4 in magnitude (e.g. `1e-05`), which JavaScript writes differently;
    receivers that verify the raw body, as the guide's Python code and Standard Webhooks do, are
    unaffected.
    """
    return json.dumps(_as_javascript(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1


def _as_javascript(value: Any) -> Any:
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        indexes = sorted((k for k in keys if _is_array_index(k)), key=int)
        ordered = indexes + [k for k in keys if not _is_array_index(k)]
        items = {str(k): v for k, v in value.items()}
        return {k: _as_javascript(items[k]) for k in ordered}
    if isinstance(value, (list, tuple)):
        return [_as_javascript(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def coexai_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str | Sequence[str],
    body: bytes,
    *,
    message_id: str,
    sent_at: datetime,
    event_type: str,
    delivery_id: str,
) -> dict[str, str]:
    """The headers of one request. `secret`: the current secret, or a list of it and, while a
    rotation's overlap lasts, the one it replaced.

    Standard Webhooks carries one `v1,<signature>` per secret in `webhook-signature`, space-separated,
    and a verifier accepts any of them. The guide's `verify_webhook` compares `X-CoExAI-Signature`
    whole, so that header holds the current secret's signature only and the old secret's goes in
    `X-CoExAI-Signature-Previous`.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    timestamp = sent_at.astimezone(UTC)
    standard = " ".join(Webhook(key).sign(msg_id=message_id, timestamp=timestamp, data=body.decode()) for key in keys)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: coexai_signature(keys[0], body),
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": standard,
        "X-CoExAI-Event": event_type,
        "X-CoExAI-Delivery": delivery_id,
    }
    if len(keys) > 1:
        headers[PREVIOUS_SIGNATURE_HEADER] = coexai_signature(keys[1], body)
    return headers
