"""Verifying the webhooks the service sends, in either of its two signature schemes.

- `X-CoExAI-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body keyed with the endpoint secret as
  text (the platform guide's `verify_webhook`); during a secret rotation the old secret's signature
  comes in `X-CoExAI-Signature-Previous`.
- Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> [v1,...]`,
  HMAC-SHA256 of `id.timestamp.body` keyed with the secret's base64-decoded bytes; the timestamp must
  be within `tolerance` seconds of now, which refuses a replayed request.

When the Standard Webhooks headers are there they decide (they also protect against replays); a
request with only `X-CoExAI-Signature` is checked by that. Both are a few lines of `hmac`; the
`standardwebhooks` package would do the second but would be this SDK's second dependency.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from coexai.errors import WebhookVerificationError
from coexai.models import Event

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds, as Standard Webhooks and Svix use


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _body(payload: bytes | str) -> bytes:
    return payload.encode() if isinstance(payload, str) else bytes(payload)


def _coexai_valid(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    provided = [headers.get("x-coexai-signature"), headers.get("x-coexai-signature-previous")]
    return any(p is not None and hmac.compare_digest(expected, p.strip()) for p in provided)


def _standard_check(secret: str, body: bytes, headers: dict[str, str], tolerance: float) -> None:
    message_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature", "")
    if not message_id or not stamp:
        raise WebhookVerificationError("Missing webhook-id or webhook-timestamp.", code="INVALID_SIGNATURE")
    try:
        sent = int(stamp)
    except ValueError:
        raise WebhookVerificationError("Invalid webhook-timestamp.", code="INVALID_SIGNATURE") from None
    if abs(time.time() - sent) > tolerance:
        raise WebhookVerificationError("The webhook's timestamp is too old or too new.", code="TIMESTAMP_OUT_OF_RANGE")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("The secret is not a whsec_ secret.", code="INVALID_SECRET") from None
    signed = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value):
            return
    raise WebhookVerificationError("No webhook-signature matches.", code="INVALID_SIGNATURE")


def check(
    payload: bytes | str, headers: Mapping[str, str], secret: str, *, tolerance: float = DEFAULT_TOLERANCE
) -> None:
    """Raise `WebhookVerificationError` unless the request was signed by the service with `secret`."""
    body, lowered = _body(payload), _lower(headers)
    if "webhook-signature" in lowered:
        _standard_check(secret, body, lowered, tolerance)
    elif "x-coexai-signature" in lowered:
        if not _coexai_valid(secret, body, lowered):
            raise WebhookVerificationError("X-CoExAI-Signature does not match.", code="INVALID_SIGNATURE")
    else:
        raise WebhookVerificationError("The request carries no signature.", code="MISSING_SIGNATURE")


class WebhookVerifier:
    """`client.webhooks.verify` and `construct_event`, with the client's `webhook_secret` as the default."""

    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def _secret(self, secret: str | None) -> str:
        chosen = secret or self.secret
        if not chosen:
            raise WebhookVerificationError("No webhook secret: pass one or set webhook_secret.", code="NO_SECRET")
        return chosen

    def verify(
        self,
        payload: bytes | str,
        headers: Mapping[str, str],
        secret: str | None = None,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> bool:
        """Whether the raw body and headers are a request the service signed (either scheme)."""
        try:
            check(payload, headers, self._secret(secret), tolerance=tolerance)
        except WebhookVerificationError as exc:
            if exc.code == "NO_SECRET":
                raise
            return False
        return True

    def construct_event(
        self,
        payload: bytes | str,
        headers: Mapping[str, str],
        secret: str | None = None,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> Event:
        """The verified event (`type`, `data`, `id` = the event id); `WebhookVerificationError` otherwise."""
        check(payload, headers, self._secret(secret), tolerance=tolerance)
        try:
            body: Any = json.loads(_body(payload))
        except ValueError:
            raise WebhookVerificationError("The body is not JSON.", code="INVALID_PAYLOAD") from None
        if not isinstance(body, dict) or not isinstance(body.get("event") or body.get("type"), str):
            raise WebhookVerificationError("The body is not a webhook event.", code="INVALID_PAYLOAD")
        lowered = _lower(headers)
        stamp = body.get("timestamp")
        return Event(
            id=lowered.get("webhook-id", ""),
            type=body.get("event") or body["type"],
            data=body.get("data") or {},
            livemode=bool(body.get("data", {}).get("livemode", True)) if isinstance(body.get("data"), dict) else True,
            created_at=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else None,
            extra={"webhook_id": body.get("webhook_id"), "timestamp": stamp},
        )
