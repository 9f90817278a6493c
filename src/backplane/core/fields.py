"""Reusable pydantic field types with the messages clients see."""

from __future__ import annotations

import json
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def _email(value: str) -> str:
    try:
        # No DNS lookups: syntax only. Stored lower-cased (one account per address).
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise PydanticCustomError("email", "Enter a valid email address.") from None


def _password(value: str) -> str:
    if len(value) < MIN_PASSWORD_LENGTH:
        raise PydanticCustomError("password", f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise PydanticCustomError("password", f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")
    if value.isspace():
        raise PydanticCustomError("password", "Password cannot be only whitespace.")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it here as a field error rather than at INSERT.
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "Must not contain NUL (\\u0000) characters.")
    return value


NoNul = AfterValidator(_no_nul)
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
NewPassword = Annotated[str, AfterValidator(_password)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_no_nul)]
ShortName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_no_nul)
]


def parse_json_object(raw: str | None, max_bytes: int) -> dict[str, Any]:
    """A form field holding a JSON object (multipart has no other way to nest); empty means {}.

    Raises ValueError with the message to show for the field.
    """
    if raw is None or raw.strip() == "":
        return {}
    if len(raw) > max_bytes:
        raise ValueError(f"At most {max_bytes} bytes of JSON.")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("Must be a JSON object.") from None
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object.")
    return value
