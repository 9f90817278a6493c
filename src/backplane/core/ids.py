"""Public ids with a type prefix (`job_…`, `file_…`, `evt_…`, `wh_…`, `whd_…`): 96 random bits in hex."""

from __future__ import annotations

import re
import secrets
from functools import cache

_HEX_CHARS = 24


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(_HEX_CHARS // 2)}"


@cache
def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}_[0-9a-f]{{{_HEX_CHARS}}}")


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` could be an id of this type; anything else names nothing (and may hold what
    PostgreSQL refuses, such as NUL), so lookups answer 404 without asking the database."""
    return _pattern(prefix).fullmatch(value) is not None
