from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from backplane.core.config import Settings
from backplane.core.crypto import DecryptionFailed, Encryptor, derive_key


def test_a_derived_key_is_stable_and_depends_on_the_secret() -> None:
    assert derive_key("a" * 40) == derive_key("a" * 40)
    assert derive_key("a" * 40) != derive_key("b" * 40)
    Fernet(derive_key("a" * 40))  # a usable Fernet key


def test_rotation_keeps_old_tokens_readable_and_moves_them_to_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = Encryptor([old]).encrypt(b"whsec_x")
    ring = Encryptor([new, old])
    assert ring.decrypt(token) == b"whsec_x"
    rotated = ring.rotate(token)
    assert Encryptor([new]).decrypt(rotated) == b"whsec_x"
    with pytest.raises(DecryptionFailed):
        Encryptor([new]).decrypt(token)


def test_a_token_from_another_key_or_altered_is_refused() -> None:
    token = Encryptor([Fernet.generate_key()]).encrypt_text("secret")
    with pytest.raises(DecryptionFailed):
        Encryptor([Fernet.generate_key()]).decrypt_text(token)
    with pytest.raises(DecryptionFailed):
        Encryptor([Fernet.generate_key()]).decrypt(b"not a token")


def test_encryption_keys_are_read_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{first.decode()}, {second.decode()}")
    assert Settings().encryption_key_ring == [first, second]


def test_a_malformed_encryption_key_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()},not-a-key-s3cr3t")
    with pytest.raises(ValidationError, match="key 2 is not a Fernet key") as caught:
        Settings()
    # what `backplane serve` prints is each error's message, never the input pydantic echoes
    assert all("s3cr3t" not in err["msg"] for err in caught.value.errors())


def test_without_encryption_keys_development_derives_one_from_the_secret_key() -> None:
    settings = Settings(auth={"secret_key": "k" * 40})
    assert settings.encryption_key_ring == [derive_key("k" * 40)]


def test_outside_the_tests_passwords_are_hashed_at_argon2id_production_cost() -> None:
    """tests/conftest.py lowers the cost in the test processes; the service itself (a fresh interpreter, as
    `serve` is) hashes with Argon2id at 64 MiB, three passes, four lanes."""
    script = (
        "import asyncio; from backplane.core.security import hash_password; "
        "print(asyncio.run(hash_password('correct horse battery staple')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), result.stdout
