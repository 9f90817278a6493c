"""Bodies and signatures: what the guide's receivers (Python and Express) and Standard Webhooks check."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from backplane.core.crypto import Encryptor
from backplane.webhooks.signing import encode_body, new_secret, payload, signed_headers

AWKWARD: dict[str, Any] = {
    "b": 1,
    "10": "index keys move first in JavaScript, in numeric order",
    "2": "two",
    "-1": "not an index",
    "01": "not an index either",
    "text": 'quotes " and \\ backslashes, tabs\t, newlines\n, NUL-free controls \x01\x1f, U+2028 \u2028',
    "unicode": "café, 東京, emoji 🎉",
    "numbers": [0, -0.0, 100.0, 0.1, 2.5e-3, 123456789.125, 1e20, 9007199254740991, -42],
    "nested": {"z": [True, False, None], "a": {"3": 3, "1": 1}},
    "empty": [{}, []],
}


def test_the_body_is_compact_utf8_json_in_javascripts_order() -> None:
    body = encode_body(AWKWARD)
    text = body.decode()
    assert json.loads(text) == {**AWKWARD, "numbers": [0, 0, 100, 0.1, 0.0025, 123456789.125, 10**20, 2**53 - 1, -42]}
    assert '"nested":{"z":[true,false,null],"a":{"1":1,"3":3}}' in text
    assert '"numbers":[0,0,100,0.1,0.0025,123456789.125,100000000000000000000,9007199254740991,-42]' in text
    assert "café, 東京, emoji 🎉" in text  # not \\u-escaped
    assert text.startswith('{"2":"two","10":"index keys move first in JavaScript, in numeric order","b":1,"-1":')


def test_the_payload_has_the_guides_fields() -> None:
    at = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert payload("job.completed", at, "wh_abc123", {"id": "job_1"}) == {
        "event": "job.completed",
        "type": "job.completed",
        "timestamp": "2024-01-15T10:30:00.000Z",
        "webhook_id": "wh_abc123",
        "data": {"id": "job_1"},
    }


def test_both_signatures_verify_and_fail_when_tampered() -> None:
    secret = new_secret()
    body = encode_body(payload("job.completed", datetime.now(UTC), "wh_1", {"id": "job_1"}))
    now = datetime.now(UTC)
    headers = signed_headers(
        secret, body, message_id="evt_1", sent_at=now, event_type="job.completed", delivery_id="whd_1"
    )
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-CoExAI-Signature"] == f"sha256={expected}"
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"job_1", b"job_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    stale = signed_headers(
        secret, body, message_id="evt_1", sent_at=now - timedelta(minutes=10), event_type="x", delivery_id="whd_1"
    )
    with pytest.raises(WebhookVerificationError, match="too old"):  # a replay of an old request
        Webhook(secret).verify(body, stale)


def test_secrets_are_random_and_well_formed() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(s) == 38 for s in secrets)


# The guide's Express handler: `express.json()` parses the body, the route re-serializes it with
# `JSON.stringify(req.body)` and checks `X-CoExAI-Signature` over that (the guide's verify_webhook).
EXPRESS_RECEIVER = r"""
const crypto = require('crypto');
function verify_webhook(payload, signature, secret) {
  const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  const provided = signature.replace('sha256=', '');
  return expected.length === provided.length &&
    crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(provided));
}
let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { raw += chunk; });
process.stdin.on('end', () => {
  const delivery = JSON.parse(raw);
  const req = { body: JSON.parse(delivery.body), headers: delivery.headers };
  const signature = req.headers['x-coexai-signature'];
  const payload = JSON.stringify(req.body);
  process.stdout.write(JSON.stringify({ verified: verify_webhook(payload, signature, delivery.secret), payload }));
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="the guide's Express receiver needs Node.js")
def test_the_guides_express_receiver_verifies_the_re_serialized_body() -> None:
    secret = new_secret()
    body = encode_body(payload("job.completed", datetime.now(UTC), "wh_1", AWKWARD))
    headers = signed_headers(
        secret, body, message_id="evt_1", sent_at=datetime.now(UTC), event_type="job.completed", delivery_id="d"
    )
    delivery = {
        "body": body.decode(),
        "headers": {"x-coexai-signature": headers["X-CoExAI-Signature"]},
        "secret": secret,
    }
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "-e", EXPRESS_RECEIVER],
        input=json.dumps(delivery),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer = json.loads(result.stdout)
    assert answer["payload"] == body.decode()
    assert answer["verified"] is True

    forged = {**delivery, "secret": new_secret()}
    result = subprocess.run(
        [node, "-e", EXPRESS_RECEIVER], input=json.dumps(forged), capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout)["verified"] is False


def test_a_replaced_secret_signs_until_its_overlap_ends() -> None:
    from backplane.webhooks.models import WebhookEndpoint

    encryptor = Encryptor([Fernet.generate_key()])
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint()
    endpoint.set_secret("whsec_old", encryptor)
    endpoint.set_secret("whsec_new", encryptor, previous_expires_at=now)
    assert endpoint.signing_secrets(encryptor, now - timedelta(microseconds=1)) == ["whsec_new", "whsec_old"]
    assert endpoint.signing_secrets(encryptor, now) == ["whsec_new"]
    only = WebhookEndpoint()
    only.set_secret("whsec_only", encryptor)
    assert only.signing_secrets(encryptor, now) == ["whsec_only"]


def test_two_secrets_sign_both_headers() -> None:
    old, new = new_secret(), new_secret()
    body = encode_body(payload("job.completed", datetime.now(UTC), "wh_1", {"id": "job_1"}))
    headers = signed_headers(
        [new, old], body, message_id="evt_1", sent_at=datetime.now(UTC), event_type="job.completed", delivery_id="d"
    )
    assert headers["X-CoExAI-Signature"] == "sha256=" + hmac.new(new.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-CoExAI-Signature-Previous"] == (
        "sha256=" + hmac.new(old.encode(), body, hashlib.sha256).hexdigest()
    )
    assert Webhook(old).verify(body, headers) == Webhook(new).verify(body, headers) == json.loads(body)
    single = signed_headers(new, body, message_id="evt_1", sent_at=datetime.now(UTC), event_type="x", delivery_id="d")
    assert "X-CoExAI-Signature-Previous" not in single
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, single)
