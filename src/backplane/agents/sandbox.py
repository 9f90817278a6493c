"""Customers' files are parsed in a child process with CPU-time and memory limits, killed when its job stops.

pypdf, python-docx, Pillow and Tesseract are given whatever a customer uploads; a file built to
exhaust them (a decompression bomb, a page tree of 100,000 copies of one heavy page, a DOCX of
millions of empty paragraphs) must cost its own job one attempt, never the worker. A thread can be
neither stopped nor limited, so each parse runs in a process of its own:

- `RLIMIT_CPU` (AGENT_PARSER_CPU_SECONDS) and `RLIMIT_AS` (AGENT_PARSER_MEMORY_MB) are set in the
  child before it touches the file; Tesseract, which pytesseract starts as the child's own child,
  inherits both.
- The child leads its own process group, so killing it takes Tesseract along. That happens when the
  parse ends, when the job is cancelled or times out (the agent's task is cancelled), and when the
  worker shuts down. If the worker dies outright, the child is killed with its fork server
  (`PR_SET_PDEATHSIG`).
- A process per parse rather than a pool: RLIMIT_CPU counts a process's whole life, so a reused
  process would carry one file's CPU time into the next; a process that ran out of memory may be
  left broken; killing a pool's worker breaks the whole pool (concurrent.futures then fails every
  other job's parse); and no customer's document stays in a process that reads another's. Children
  are forked from a `forkserver` that has already imported the parsers, so a start costs a fork
  (milliseconds), not an interpreter start, and never copies the worker's own state (event loop,
  sockets, threads) as a plain fork would.

A parser may report pages done while it reads (`parse_progress.page_done`): the child sends them on
the same pipe ahead of its answer, and `on_pages` hears each one.

The child's exception comes back as it was raised (an `AgentInputError` stays one and fails the job
at once). A child stopped by a limit or a signal raises `AgentInputError` saying what happened: its
input would do no better on another attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing import spawn
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from backplane.agents import parse_progress
from backplane.agents.base import AgentInputError

T = TypeVar("T")

# Imported once in the fork server, so that every child starts with them loaded.
PRELOAD = ["backplane.agents.documents", "backplane.agents.transcribe", "pocketsphinx"]
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)
_CHILD_NAME = "backplane-parser"
_preparation_data = spawn.get_preparation_data


def _without_main(name: str) -> dict[str, Any]:
    """multiprocessing has every child import the parent's main module first (`backplane worker`'s script,
    and with it the whole app: 1.5 s per parse), in case the call was defined there. Ours never are;
    preloading `__main__` in the fork server would avoid it, but Python before 3.13 never passes the
    main module's path to the fork server. So our children, by their name, are told no main module."""
    data = _preparation_data(name)
    if name == _CHILD_NAME:
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


spawn.get_preparation_data = _without_main  # popen_forkserver looks it up on each start
_PR_SET_PDEATHSIG = 1  # from linux/prctl.h
_live: set[int] = set()  # pids of the children running now


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int


def start_fork_server() -> None:
    """Start the fork server now (it imports the parsers, about a second), not on a job's first parse."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def live_children() -> frozenset[int]:
    """The process ids of the parses running now."""
    return frozenset(_live)


PagesDone = Callable[[int, int], Awaitable[None]]  # (pages done, pages in all) -> None


async def run_isolated(call: Callable[[], T], *, limits: Limits, subject: str, on_pages: PagesDone | None = None) -> T:
    """`call()` in a child process under `limits`; `subject` names the input in errors ("invoice.pdf").

    `call` must pickle: a module-level function, or a `functools.partial` of one. `on_pages` hears the
    pages the parser reports as done, while it runs.
    """
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_child, args=(sender, call, limits, subject), name=_CHILD_NAME, daemon=True)
    # In a thread: start() writes the pickled call, the file's bytes with it, to the child.
    starting = asyncio.ensure_future(asyncio.to_thread(process.start))
    try:
        await asyncio.shield(starting)
        sender.close()  # the child holds the only writing end now: its exit reads as end of file here
        _live.add(process.pid or 0)
        while True:
            await _readable(receiver)
            try:
                ok, value = receiver.recv()
            except EOFError:  # the child died without answering: a limit, or a crash
                await asyncio.to_thread(process.join)
                raise AgentInputError(_death(subject, process.exitcode, limits)) from None
            if ok is not None:
                break
            if on_pages is not None:  # (None, (done, total)): a progress report ahead of the answer
                await on_pages(*value)
    finally:
        # Done, failed or cancelled (the job was cancelled or timed out): the child never outlives this.
        with contextlib.suppress(BaseException):
            await starting  # a child still being started is killed once it exists
        _kill(process)
        sender.close()
        receiver.close()
        await asyncio.shield(asyncio.to_thread(process.join))  # reaped even if this task is cancelled again
    if ok:
        result: T = value
        return result
    raise value


async def _readable(connection: Connection) -> None:
    """Wait, without holding a thread, until the child has answered or exited (end of file)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def _wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(connection.fileno(), _wake)
    try:
        await ready
    finally:
        loop.remove_reader(connection.fileno())


def _kill(process: BaseProcess) -> None:
    if process.pid is None:
        return
    _live.discard(process.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the child and the Tesseract under it
    if process.exitcode is None:  # killed before it had made its own group
        process.kill()


def _death(subject: str, exitcode: int | None, limits: Limits) -> str:
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):  # the soft CPU limit, then the hard one
        return f"{subject} took more than {limits.cpu_seconds} s of CPU time to read; it is refused."
    stopped_by = signal.Signals(-exitcode).name if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
    return f"{subject} could not be read: the reader stopped unexpectedly ({stopped_by})."


# -- in the child ---------------------------------------------------------------------------------


def _child(sender: Connection, call: Callable[[], Any], limits: Limits, subject: str) -> None:
    os.setpgid(0, 0)  # its own process group, which Tesseract joins: one killpg ends both
    if sys.platform == "linux":  # killed when the fork server goes, i.e. when the worker has gone
        # No maintained library exposes prctl without a compiler and libcap headers; it is one libc call.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed parser leaves no core file behind
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    # Tesseract's OpenMP threads would each take a core and address space; one thread per parse.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    parse_progress.listen(lambda done, total: sender.send((None, (done, total))))
    try:
        outcome: tuple[bool, Any] = (True, call())
    except MemoryError:
        megabytes = limits.memory_bytes // (1024 * 1024)
        message = f"{subject} needs more than {megabytes} MB of memory to read; it is refused."
        outcome = (False, AgentInputError(message))
    except RecursionError:
        outcome = (False, AgentInputError(f"{subject} is nested too deeply to read; it is refused."))
    except Exception as exc:
        outcome = (False, exc)
    try:
        sender.send(outcome)
    except Exception:  # an exception that does not pickle: its type and message still tell
        sender.send((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")))
    sender.close()
