"""Secrets at rest: one application key ring for everything we must be able to read back.

Webhook signing secrets and stored responses that carry a secret are encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) through a `MultiFernet`: the first key of
ENCRYPTION_KEYS encrypts, every key decrypts, so an operator rotates by putting a new key first
and re-encrypting (`Encryptor.rotate`) before dropping the old one.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Depends, Request

__all__ = ["DecryptionFailed", "Encryptor", "EncryptorDep", "derive_key", "parse_keys"]

_DERIVATION_INFO = b"backplane encryption key v1"


class DecryptionFailed(Exception):
    """The token was not made by any key of the ring (or was altered)."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from SECRET_KEY (development and tests; production sets ENCRYPTION_KEYS)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVATION_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def parse_keys(value: str) -> list[bytes]:
    """ENCRYPTION_KEYS: comma-separated Fernet keys (`Fernet.generate_key()`), newest first.

    Raises ValueError naming the position of a key that is not one (never the key itself)."""
    keys = [part.strip().encode() for part in value.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(
                f"ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes, "
                "e.g. from `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys


class Encryptor:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._ring = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, data: bytes) -> bytes:
        return self._ring.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._ring.decrypt(token)
        except InvalidToken:
            raise DecryptionFailed("not encrypted with any of ENCRYPTION_KEYS") from None

    def encrypt_text(self, text: str) -> str:
        return self.encrypt(text.encode()).decode("ascii")

    def decrypt_text(self, token: str) -> str:
        return self.decrypt(token.encode("ascii")).decode()

    def rotate_text(self, token: str) -> str:
        return self.rotate(token.encode("ascii")).decode("ascii")

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext under the newest key (for re-encrypting after a key is added)."""
        try:
            return self._ring.rotate(token)
        except InvalidToken:
            raise DecryptionFailed("not encrypted with any of ENCRYPTION_KEYS") from None


async def _encryptor(request: Request) -> Encryptor:
    encryptor: Encryptor = request.app.state.encryptor  # built once, in the app's lifespan
    return encryptor


EncryptorDep = Annotated[Encryptor, Depends(_encryptor)]
