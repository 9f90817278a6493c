"""Helpers shared by the renderers."""

from __future__ import annotations

import re
from typing import Any

# Characters XML 1.0 (and so lxml and ReportLab's paragraph parser) cannot hold: C0 controls other than
# tab, newline and carriage return, lone surrogates, and U+FFFE/U+FFFF. A job's output may carry them
# (text extracted from a customer's PDF), so they are dropped before rendering.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(value: Any) -> str:
    """`value` as display text: None is empty, booleans are yes/no, numbers as JSON writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _NOT_XML.sub("", str(value))


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
