"""Every Redis key of the service, built here under one prefix.

Keys are grouped by the domain that owns them; a module that needs a key calls its builder rather than
spelling it, so that what lives in Redis can be read off this one file.
"""

from __future__ import annotations

import uuid

PREFIX = "bp:"


def caller(user_id: uuid.UUID | str) -> str:
    """What a user is in each organization (access/callers.py)."""
    return f"{PREFIX}caller:{user_id}"


def license_state(license_id: uuid.UUID | str) -> str:
    """A license's seats, status, expiry and mode beside its leases (licenses/state.py)."""
    return f"{PREFIX}license:{license_id}"


def license_by_key(key_hash: str) -> str:
    """A license's id by the SHA-256 of its key (licenses/state.py)."""
    return f"{PREFIX}license-key:{key_hash}"
