"""Log lines: one JSON object per line (LOG_FORMAT=json) or readable text, each carrying the request,
organization, job or webhook delivery it was written for, and never a secret.

`backplane serve` hands `logging_config()` to uvicorn (so each API process, its error and access logs
included, logs the same way); `backplane worker` applies it with `configure_logging()`. Code that knows
what it is working on says so with `log_context(job_id=...)` or `bind_log_context(...)`; each request
starts a context of its own with its request id (the request-id middleware).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal

LogFormat = Literal["json", "text"]
CONTEXT_FIELDS = ("request_id", "organization_id", "job_id", "delivery_id")

_context: ContextVar[Mapping[str, object]] = ContextVar("log_context", default=MappingProxyType({}))


def _merged(fields: Mapping[str, object]) -> dict[str, object]:
    # Values are kept as given (a UUID stays one) and made text only when a line is written.
    return {**_context.get(), **{name: value for name, value in fields.items() if value is not None}}


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every line logged inside the block (by this task and the tasks it starts) carries `fields`."""
    token = _context.set(_merged(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: object) -> None:
    """Like `log_context`, for the rest of the current task (a request once its caller is known)."""
    _context.set(_merged(fields))


def current_log_context() -> Mapping[str, object]:
    return _context.get()


# --- redaction ----------------------------------------------------------------------------------

_MASK = "[REDACTED]"
_QUERY_NAMES = r"[\w-]*(?:password|secret|token|key|code|state|signature)"
# A name whose value is a secret: password, new_password, signing_secret, reset_token, api_key, X-…-Signature.
_SECRET_NAME = r"[\w-]*(?:password|passwd|secret|token|api_?key|authorization|signature)"
# Each pattern with its replacement and the literals of which every match holds at least one (in
# lower case when the pattern ignores case). Most lines (an access line, a job's progress) hold none
# of a pattern's literals, and an `in` test is far cheaper than the pattern's scan: the last pattern
# alone tries a name at every word of the line. Redaction ran on every access line and cost a seat
# heartbeat about a quarter of its time (bench/seats.py, under py-spy) before the scans were skipped.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # `Authorization: Bearer …`, `Basic …`.
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 " + _MASK, ("bearer", "basic")),
    # JSON web tokens (access, refresh, OAuth state) wherever they appear.
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), _MASK, ("eyJ",)),
    # Our API keys, webhook signing secrets and Stripe's keys and secrets.
    (re.compile(r"\b(coexai_(?:live|test)_)[A-Za-z0-9_-]+"), r"\1" + _MASK, ("coexai_",)),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/=_-]+"), r"\1" + _MASK, ("whsec_",)),
    (re.compile(r"\b((?:sk|rk)_(?:live|test)_)[A-Za-z0-9]+"), r"\1" + _MASK, ("k_live_", "k_test_")),
    # A password in a URL: scheme://user:password@host.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), r"\1" + _MASK + "@", ("://",)),
    # Query strings: ?token=…&code=…
    (
        re.compile(rf"(?i)([?&]{_QUERY_NAMES}=)[^&\s\"'#]+"),
        r"\1" + _MASK,
        ("password", "secret", "token", "key", "code", "state", "signature"),
    ),
    # Single-use tokens in paths: /v1/invitations/{token}/accept.
    (re.compile(r"(/invitations/)(?!inv_)[A-Za-z0-9_-]{16,}"), r"\1" + _MASK, ("/invitations/",)),
    # name=value, "name": "value", name: value.
    (
        re.compile(
            rf"(?i)([\"']?\b{_SECRET_NAME}[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\]|(?:bearer|basic)\s)[^\s\"',;&}}]+"
        ),
        r"\1" + _MASK,
        ("password", "passwd", "secret", "token", "apikey", "api_key", "authorization", "signature"),
    ),
)


# Any pattern's literal, in lower case: a line without one (the usual line) is left as it is at the
# cost of one scan.
_ANY_LITERAL = re.compile(
    "|".join(sorted({re.escape(literal.lower()) for *_, literals in _PATTERNS for literal in literals}))
)


def redact(text: str) -> str:
    # The literal check reads the line lower-cased, which is exact for ASCII only: under IGNORECASE a
    # pattern's `s` also matches the long s (U+017F), and `lower()` leaves that character as it is. A
    # line that is not ASCII therefore skips the check and is scanned by every pattern.
    folded = text.lower() if text.isascii() else None
    if folded is not None and _ANY_LITERAL.search(folded) is None:
        return text
    for pattern, replacement, literals in _PATTERNS:
        if folded is not None:
            haystack = folded if pattern.flags & re.IGNORECASE else text
            if not any(literal in haystack for literal in literals):
                continue
        text = pattern.sub(replacement, text)
        if folded is not None:
            folded = text.lower()  # a replacement may have removed a later pattern's literal, not added one
    return text


class RedactingFilter(logging.Filter):
    """On a handler: the record's message and exception text with every secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ContextFilter(logging.Filter):
    """On a handler: the record gets the request, organization, job and delivery it was written for."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.log_context = current_log_context()
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            record.http = {"client": client, "method": method, "path": redact(str(path)), "status": status}
        return True


class RoutineRuns(logging.Filter):
    """On arq's `arq.worker` logger: drops the INFO lines (start, end) of frequent cron jobs that run
    every few seconds whether or not there is work, so that an idle worker is quiet. arq names a cron
    run by the cron's name alone (the record's second argument); a failing run still logs (WARNING and
    up pass), and so do the cron's own log lines when it does something."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not isinstance(record.args, tuple) or len(record.args) < 2:
            return True
        return record.args[1] not in self.names


# --- formats ------------------------------------------------------------------------------------


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    fields: Mapping[str, object] | None = getattr(record, "log_context", None)
    return {name: str(value) for name, value in (fields if fields is not None else current_log_context()).items()}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context known, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_of(record),
        }
        entry.update(getattr(record, "http", {}))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request_id=… job_id=…]: message`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = _context_of(record)
        record.context = (
            " [" + " ".join(f"{k}={fields[k]}" for k in CONTEXT_FIELDS if k in fields) + "]" if fields else ""
        )
        return super().format(record)


def logging_config(log_format: LogFormat, level: str = "INFO", stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration (uvicorn's `log_config` takes it as it is)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "redact": {"()": RedactingFilter}},
        "formatters": {"default": {"()": formatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "default",
                "filters": ["context", "redact"],
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        # uvicorn's loggers go to the root's handler, like everyone else's.
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": "INFO"}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(log_format: LogFormat, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))


def handler_for(stream: IO[str], log_format: LogFormat) -> logging.Handler:
    """A handler writing to `stream` as `backplane serve` and `worker` write to standard error."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    return handler
