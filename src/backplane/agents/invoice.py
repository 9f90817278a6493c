"""Rules that read an invoice's fields from its text (a PDF's text layer or OCR output).

Each field has its own rule, applied line by line:
- invoice_number: the token after "Invoice No/Number/#" (or "Inv"), which must contain a digit.
- date / due_date: the date after "Invoice Date", "Date of issue", "Date" (or "Due"), parsed by
  dateutil (ISO, 01/15/2024, 15.01.2024, January 15, 2024, 15 Jan 2024) and given as ISO 8601.
- vendor: the line after "From/Vendor/Seller/Supplier/Bill From", else the first line at the top
  of the page that is a name (not a label, an address or the word INVOICE).
- line_items: the lines between the table header (Description ... Amount) and the first total
  line that end in an amount; one, two or three trailing numbers are amount, quantity + amount, or
  quantity + unit price + amount.
- subtotal, tax, total: the last amount on lines labelled so ("Total", "Amount Due", "Balance Due").
The confidence is how many of the five core fields were found (80%) and whether the amounts agree
(20%: the items add up to the subtotal or total, and subtotal + tax = total), times the text's
quality (1.0 for a text layer, Tesseract's mean word confidence for OCR).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from dateutil import parser as dateparser

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    rf"\b(\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS},?\s+\d{{4}})\b",
    re.IGNORECASE,
)
_MONEY = re.compile(r"^[(\-]?(?:[$€£¥]|USD|EUR|GBP)?\s?\d{1,3}(?:[,.\s]?\d{3})*(?:[.,]\d{2})[)]?$", re.IGNORECASE)
_NUMBER = re.compile(r"^(?:[$€£¥])?\d+(?:[.,]\d+)?x?$", re.IGNORECASE)
_INVOICE_NUMBER = re.compile(
    r"\b(?:invoice|inv)\b[ \t]*(?:no\.?|number|num\.?|#|id)?[ \t]*[:#.]?[ \t]*"
    r"#?([A-Z0-9][A-Z0-9\-/._]*\d[A-Z0-9\-/._]*)",
    re.IGNORECASE,
)
_VENDOR_LABEL = re.compile(r"^(?:from|vendor|seller|supplier|bill\s+from|issued\s+by|company)\s*:\s*(.*)$", re.I)
_DATE_LABEL = re.compile(r"\b(?:invoice\s+date|date\s+of\s+issue|issue\s+date|issued|date)\b", re.IGNORECASE)
_DUE_LABEL = re.compile(r"\b(?:due\s+date|payment\s+due|due)\b", re.IGNORECASE)
_TOTAL = re.compile(r"^\s*(?:grand\s+total|total\s+due|total\s+amount|amount\s+due|balance\s+due|total)\b", re.I)
_SUBTOTAL = re.compile(r"^\s*sub[\s-]?total\b", re.IGNORECASE)
_TAX = re.compile(r"^\s*(?:sales\s+tax|tax|vat|gst|hst)\b", re.IGNORECASE)
_SUMMARY = re.compile(
    r"^\s*(?:sub[\s-]?total|total|grand\s+total|sales\s+tax|tax|vat|gst|hst|balance|amount\s+due|paid)\b", re.I
)
_HEADER = re.compile(r"\b(?:description|item|service|product)\b.*\b(?:amount|total|price|cost)\b", re.IGNORECASE)
_COMPANY = re.compile(r"\b(?:inc|llc|ltd|limited|corp|corporation|co|gmbh|sarl|sas|plc|bv|ag|pty|company)\b\.?", re.I)
_NOT_VENDOR = re.compile(r"\b(?:invoice|bill\s+to|ship\s+to|date|page|tax\s+invoice|receipt|statement)\b", re.I)
_CURRENCIES = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}


def parse_amount(token: str) -> Decimal | None:
    """ "$1,234.50" -> 1234.50, "1.234,50" -> 1234.50, "(12.00)" -> -12.00; None when not an amount."""
    raw = token.strip()
    negative = raw.startswith(("(", "-")) and (raw.endswith(")") or raw.startswith("-"))
    raw = re.sub(r"(?i)usd|eur|gbp|[$€£¥()\-\s]", "", raw)
    if not raw or not raw[0].isdigit():
        return None
    if "," in raw and "." in raw:
        decimal_mark = "," if raw.rfind(",") > raw.rfind(".") else "."
    elif "," in raw:
        decimal_mark = "," if re.search(r",\d{2}$", raw) else "."
    else:
        decimal_mark = "."
    thousands = "." if decimal_mark == "," else ","
    raw = raw.replace(thousands, "").replace(decimal_mark, ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return -value if negative else value


def _money_tokens(line: str) -> list[str]:
    """Amount-like tokens of a line ("$ 1,234.50" is one token), in order."""
    joined = re.sub(r"([$€£¥])\s+(?=\d)", r"\1", line)
    return [t for t in joined.split() if _MONEY.match(t.rstrip(":"))]


def _last_amount(line: str) -> Decimal | None:
    tokens = _money_tokens(line)
    return parse_amount(tokens[-1]) if tokens else None


def parse_date(text: str) -> date | None:
    match = _DATE.search(text)
    if match is None:
        return None
    candidate = match.group(1)
    day_first = bool(re.match(r"\d{1,2}\.\d{1,2}\.\d{2,4}$", candidate))  # 15.01.2024 is European
    try:
        return dateparser.parse(candidate, dayfirst=day_first).date()
    except (ValueError, OverflowError):
        return None


def _line_item(line: str) -> dict[str, Any] | None:
    joined = re.sub(r"([$€£¥])\s+(?=\d)", r"\1", line.strip())
    tokens = joined.split()
    numbers: list[str] = []
    while tokens and len(numbers) < 3 and (_MONEY.match(tokens[-1]) or _NUMBER.match(tokens[-1])):
        numbers.insert(0, tokens.pop())
    description = " ".join(tokens).strip(" .:-|")
    if not numbers or not _MONEY.match(numbers[-1]) or not re.search(r"[A-Za-z]{2}", description):
        return None
    amount = parse_amount(numbers[-1])
    if amount is None:
        return None
    item: dict[str, Any] = {"description": description, "amount": float(amount)}
    rest = [parse_amount(n.rstrip("xX")) for n in numbers[:-1]]
    if len(rest) == 2 and rest[0] is not None and rest[1] is not None:
        item["quantity"], item["unit_price"] = float(rest[0]), float(rest[1])
    elif len(rest) == 1 and rest[0] is not None:
        if rest[0] == rest[0].to_integral_value() and "." not in numbers[0] and "," not in numbers[0]:
            item["quantity"] = float(rest[0])
        else:
            item["unit_price"] = float(rest[0])
    return item


def _vendor(lines: list[str]) -> str | None:
    for index, line in enumerate(lines):
        match = _VENDOR_LABEL.match(line)
        if match:
            value = match.group(1).strip() or (lines[index + 1].strip() if index + 1 < len(lines) else "")
            if value:
                return value
    candidates = []
    for line in lines[:10]:
        if _NOT_VENDOR.search(line) or ":" in line or not re.search(r"[A-Za-z]{2}", line):
            if re.search(r"\bbill\s+to\b", line, re.IGNORECASE):
                break
            continue
        if re.match(r"^\d", line) or "@" in line or re.search(r"\d{3}.*\d{3}", line):
            continue  # an address, an email or a phone number
        candidates.append(line.strip())
    companies = [c for c in candidates if _COMPANY.search(c)]
    chosen = companies or candidates
    return chosen[0] if chosen else None


def extract_invoice(text: str) -> dict[str, Any]:
    """The invoice fields found in `text`; a field not found is None (line_items: [])."""
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    number = None
    for line in lines:
        match = _INVOICE_NUMBER.search(line)
        if match and not _DATE.fullmatch(match.group(1)):
            number = match.group(1).rstrip(".")
            break
    issued = due = None
    for line in lines:
        if _DUE_LABEL.search(line):
            due = due or parse_date(line)
        elif _DATE_LABEL.search(line):
            issued = issued or parse_date(line)
    if issued is None:
        issued = next((d for d in (parse_date(line) for line in lines if not _DUE_LABEL.search(line)) if d), None)
    header = next((i for i, line in enumerate(lines) if _HEADER.search(line) and not _money_tokens(line)), None)
    first_summary = next(
        (i for i, line in enumerate(lines) if i > (header or -1) and _SUMMARY.match(line) and _money_tokens(line)),
        len(lines),
    )
    region = lines[(header + 1 if header is not None else 0) : first_summary]
    items = [item for item in (_line_item(line) for line in region) if item is not None]
    if header is None:  # without a table header, a line item must not look like a label line
        items = [i for i in items if not _INVOICE_NUMBER.search(i["description"]) and ":" not in i["description"]]
    subtotal = tax = total = None
    for line in lines:
        if _SUBTOTAL.match(line):
            subtotal = _last_amount(line) if subtotal is None else subtotal
        elif _TAX.match(line):
            tax = _last_amount(line) if tax is None else tax
        elif _TOTAL.match(line):
            found = _last_amount(line)
            total = found if found is not None else total  # the last total line is the grand total
    currency = next((code for symbol, code in _CURRENCIES.items() if symbol in text), None)
    currency = currency or next((c for c in ("USD", "EUR", "GBP", "CHF", "CAD", "AUD") if c in text), None)
    return {
        "invoice_number": number,
        "date": issued.isoformat() if issued else None,
        "due_date": due.isoformat() if due else None,
        "vendor": _vendor(lines),
        "line_items": items,
        "subtotal": float(subtotal) if subtotal is not None else None,
        "tax": float(tax) if tax is not None else None,
        "total": float(total) if total is not None else None,
        "currency": currency,
    }


def invoice_checks(data: dict[str, Any]) -> dict[str, Any]:
    """Which core fields were found and whether the amounts agree (to the cent)."""
    core = ("invoice_number", "date", "vendor", "line_items", "total")
    found = [name for name in core if data.get(name)]
    items_sum = round(sum(i["amount"] for i in data["line_items"]), 2) if data["line_items"] else None
    total, subtotal, tax = data.get("total"), data.get("subtotal"), data.get("tax")
    agreements: list[bool] = []
    if items_sum is not None and (subtotal is not None or total is not None):
        agreements.append(items_sum in {subtotal, total})
    if subtotal is not None and tax is not None and total is not None:
        agreements.append(round(subtotal + tax, 2) == total)
    return {
        "fields_found": found,
        "fields_missing": [name for name in core if name not in found],
        "line_items_sum": items_sum,
        "amounts_consistent": bool(agreements) and all(agreements),
    }


def invoice_confidence(checks: dict[str, Any], quality: float) -> float:
    score = 0.8 * len(checks["fields_found"]) / 5 + (0.2 if checks["amounts_consistent"] else 0.0)
    return round(score * quality, 2)
