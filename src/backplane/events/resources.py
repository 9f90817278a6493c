"""What an event is about: the one resource whose events an endpoint with `ordering: per_resource`
receives one after another (webhooks/delivery.py). `<kind>:<id>`, so that ids of different kinds
never meet; None for an event about no single resource (a monthly quota notice)."""

from __future__ import annotations

from typing import Any


def _nested(data: dict[str, Any], key: str) -> Any:
    inner = data.get(key)
    return inner.get("id") if isinstance(inner, dict) else None


def resource_of(event_type: str, data: dict[str, Any]) -> str | None:
    kind = event_type.split(".", 1)[0]
    found: Any = None
    if kind in ("job", "api_key", "file"):
        found = data.get("id")
    elif kind in ("subscription", "license"):
        found = _nested(data, kind)
    elif kind == "payment":
        # A payment belongs to its subscription's story (paid, then updated); an invoice alone otherwise.
        if data.get("subscription_id"):
            kind, found = "subscription", data["subscription_id"]
        else:
            kind, found = "invoice", data.get("invoice_id")
    elif kind == "seat":
        kind, found = "seat", data.get("session_id")
    elif kind == "member":
        # invited, then joined, then removed: one person in one organization.
        kind, found = "member", str(data.get("email") or "").lower()
    if found is None or found == "":
        return None
    return f"{kind}:{found}"[:100]
