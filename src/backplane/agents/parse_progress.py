"""Pages done, told from inside a parser: the sandbox's child sends them to the job while the file is read.

A parser (documents.py) calls `page_done(done, total)` after each page. In the sandbox's child,
`agents/sandbox.py` has set where the reports go (the pipe back to the worker, whose
`AgentContext.parse(..., on_pages=...)` turns them into the job's progress); anywhere else (a parser
called directly, as tests and text agents do) a report goes nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_INTERVAL_SECONDS = 0.5  # a 2,000-page text PDF reads pages faster than anyone watches them

_send: Callable[[int, int], None] | None = None
_last_sent = 0.0


def listen(send: Callable[[int, int], None] | None) -> None:
    """Where `page_done` reports go in this process (None: nowhere)."""
    global _send, _last_sent
    _send, _last_sent = send, 0.0


def page_done(done: int, total: int) -> None:
    """`done` of `total` pages are read: sent for the first and last page, else at most twice a second."""
    global _last_sent
    if _send is None:
        return
    now = time.monotonic()
    if done in (1, total) or now - _last_sent >= MIN_INTERVAL_SECONDS:
        _last_sent = now
        _send(done, total)
