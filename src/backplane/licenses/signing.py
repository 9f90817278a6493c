"""Signed license files: a license's payload and an Ed25519 signature over its canonical bytes.

A file is verifiable offline with the public key served at `/api/v1/licenses/public-key/`:

    {"format": "backplane-license-v1", "algorithm": "Ed25519", "key_id": "<fingerprint>",
     "payload": {id, key, tier, seats, expiry, organization, livemode, issued_at, expires_at},
     "signature": "<base64 of the 64-byte signature over canonical_bytes(payload)>"}

`format`, `algorithm` and `key_id` only say how to check the file; everything a reader may trust
is in the signed payload; `livemode: false` marks a test-mode license, which licensed software
should refuse in production builds. Timestamps are RFC 3339 strings in UTC, `expiry` is null for a license
that never expires, and the file itself stops being valid at `expires_at`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backplane.core.config import Settings, load_signing_key

if TYPE_CHECKING:
    from backplane.licenses.models import License

FORMAT = "backplane-license-v1"
ALGORITHM = "Ed25519"
SIGNATURE_BYTES = 64
PAYLOAD_FIELDS = ("id", "key", "tier", "seats", "expiry", "organization", "issued_at", "expires_at")

VerificationCode = Literal["VALID", "MALFORMED", "UNKNOWN_FORMAT", "BAD_SIGNATURE", "LICENSE_EXPIRED", "FILE_EXPIRED"]


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@lru_cache(maxsize=4)
def _private_key(pem: str) -> Ed25519PrivateKey:
    return load_signing_key(pem)


def private_key(settings: Settings) -> Ed25519PrivateKey:
    return _private_key(settings.license_signing_pem)


def public_key(settings: Settings) -> Ed25519PublicKey:
    return private_key(settings).public_key()


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint that names the key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or a ValueError saying why not."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key ('-----BEGIN PUBLIC KEY-----')") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key ({type(key).__name__.removeprefix('_')})")
    return key


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def license_payload(license_: License, *, issued_at: datetime, ttl_seconds: int) -> dict[str, Any]:
    """The signed facts. The file lasts `ttl_seconds`, never past the license's own expiry."""
    issued_at = issued_at.astimezone(UTC).replace(microsecond=0)
    expires_at = issued_at + timedelta(seconds=ttl_seconds)
    if license_.expiry_date is not None:
        expires_at = min(expires_at, license_.expiry_date)
    return {
        "id": str(license_.id),
        "key": license_.key_string,
        "tier": license_.tier,
        "seats": license_.seats,
        "expiry": timestamp(license_.expiry_date) if license_.expiry_date is not None else None,
        "organization": str(license_.organization_id),
        "livemode": license_.livemode,
        "issued_at": timestamp(issued_at),
        "expires_at": timestamp(expires_at),
    }


def sign(payload: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    signature = key.sign(canonical_bytes(payload))
    return {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "payload": dict(payload),
        "signature": base64.b64encode(signature).decode(),
    }


@dataclass(frozen=True, slots=True)
class VerificationResult:
    code: VerificationCode
    reason: str | None = None
    payload: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.code == "VALID"

    def summary(self) -> str:
        if not self.ok or self.payload is None:
            return f"invalid: {self.reason}"
        p = self.payload
        seats = f"{p['seats']} seat" + ("" if p["seats"] == 1 else "s")
        until = f"valid until {p['expires_at']}"
        if p["expiry"] is None:
            until += " (the license itself never expires)"
        mode = "TEST-MODE license" if p.get("livemode") is False else "license"
        return f"valid: {mode} {p['key']} ({p['tier']}, {seats}), {until}"


class _Invalid(Exception):
    def __init__(self, code: VerificationCode, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def verify_license_file(
    data: object, public_key: Ed25519PublicKey, *, now: datetime | None = None
) -> VerificationResult:
    """Check a parsed license file offline; say precisely why it fails when it does."""
    try:
        payload = _verified_payload(data, public_key)
        _check_dates(payload, now or datetime.now(UTC))
    except _Invalid as invalid:
        return VerificationResult(invalid.code, invalid.reason)
    return VerificationResult("VALID", payload=payload)


def _verified_payload(data: object, public_key: Ed25519PublicKey) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Invalid("MALFORMED", f"not a license file: expected a JSON object, got {_json_type(data)}")
    missing = [name for name in ("format", "payload", "signature") if name not in data]
    if missing:
        raise _Invalid("MALFORMED", f"not a license file: missing {', '.join(repr(m) for m in missing)}")
    if data["format"] != FORMAT:
        raise _Invalid("UNKNOWN_FORMAT", f"unknown license file format {data['format']!r} (expected {FORMAT!r})")
    algorithm = data.get("algorithm", ALGORITHM)
    if algorithm != ALGORITHM:
        raise _Invalid("UNKNOWN_FORMAT", f"unsupported signature algorithm {algorithm!r} (expected {ALGORITHM!r})")
    payload, signature = data["payload"], data["signature"]
    if not isinstance(payload, dict):
        raise _Invalid("MALFORMED", f"not a license file: 'payload' is {_json_type(payload)}, not an object")
    try:
        raw_signature = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw_signature = b""
    if len(raw_signature) != SIGNATURE_BYTES:
        raise _Invalid("MALFORMED", f"not a license file: 'signature' is not base64 of {SIGNATURE_BYTES} bytes")
    try:
        public_key.verify(raw_signature, canonical_bytes(payload))
    except InvalidSignature:
        expected, claimed = key_id(public_key), data.get("key_id")
        if isinstance(claimed, str) and claimed != expected:
            raise _Invalid(
                "BAD_SIGNATURE",
                f"signature does not match: the file names signing key {claimed!r}, this public key is {expected!r}",
            ) from None
        raise _Invalid("BAD_SIGNATURE", "signature does not match: the file was modified") from None
    return payload


def _check_dates(payload: dict[str, Any], now: datetime) -> None:
    missing = [name for name in PAYLOAD_FIELDS if name not in payload]
    if missing:
        raise _Invalid("MALFORMED", f"not a license file: the payload lacks {', '.join(repr(m) for m in missing)}")
    expires_at = _parse_time(payload, "expires_at")
    expiry = None if payload["expiry"] is None else _parse_time(payload, "expiry")
    if expiry is not None and now >= expiry:
        raise _Invalid("LICENSE_EXPIRED", f"license expired on {timestamp(expiry)}")
    if now >= expires_at:
        raise _Invalid("FILE_EXPIRED", f"file expired on {timestamp(expires_at)}; download a fresh one")


def _parse_time(payload: dict[str, Any], name: str) -> datetime:
    value = payload[name]
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _Invalid("MALFORMED", f"not a license file: payload field {name!r} is not a timestamp with a time zone")
    return moment


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
