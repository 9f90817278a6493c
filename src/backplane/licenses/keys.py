"""License key strings: `PROD-2026-7KQD-M3XA-9TWC-HN4R`.

A prefix, the year of issue, then four groups of four characters from Crockford's base-32 alphabet
(no I, L, O, U, so nothing reads as another character). The last character is a check symbol over
everything before it, so a mistyped key is told apart (MALFORMED) from a well-formed unknown one
(NOT_FOUND) without a database lookup. 15 random symbols give 75 bits.
"""

from __future__ import annotations

import functools
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 4
GROUP_LENGTH = 4
_FORMAT = re.compile(rf"^([A-Z]{{2,8}})-(\d{{4}})((?:-[{ALPHABET}]{{{GROUP_LENGTH}}}){{{GROUPS}}})$")
# Crockford's reading rules: what a person may type for a symbol.
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


_VALUE = {char: value for value, char in enumerate(ALPHABET)}


def _check_symbol(body: str) -> str:
    total = 0
    for position, char in enumerate(body.replace("-", ""), 1):
        value = _VALUE.get(char)
        total = (total * 31 + (ord(char) if value is None else value) * position) % 1_000_003
    return ALPHABET[total % len(ALPHABET)]


def generate(prefix: str, year: int) -> str:
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH - 1))
    body = f"{prefix}-{year:04d}-" + "-".join(
        symbols[i : i + GROUP_LENGTH] for i in range(0, GROUPS * GROUP_LENGTH - 1, GROUP_LENGTH)
    )
    return body + _check_symbol(body)


def normalize(key: str) -> str | None:
    """The canonical key, or None when `key` is not a well-formed license key (wrong shape or check)."""
    if len(key) > 64:  # before the cache: what it keeps is at most 4,096 short strings
        return None
    return _normalized(key)


# Every acquire normalizes the key it is sent, and the machines of one license all send the same key.
@functools.lru_cache(maxsize=4096)
def _normalized(key: str) -> str | None:
    key = key.strip().upper()
    head, _, rest = key.partition("-")
    year, _, groups = rest.partition("-")
    candidate = f"{head}-{year}-{groups.translate(_READ_AS)}"
    if not _FORMAT.match(candidate):
        return None
    if _check_symbol(candidate[:-1]) != candidate[-1]:
        return None
    return candidate
