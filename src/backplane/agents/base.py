"""What every agent is: a name, its input and config schemas, the files it takes, and `run`.

A job's worker builds an `AgentContext` (the job's files, a guarded HTTP client, an optional LLM)
and calls `agent.run(ctx, input, config)` with the job's `input_data` and `config` already
validated against the agent's models. `run` returns the job's `output_data` (JSON-able dict).
Raising `AgentInputError` fails the job at once (no retry: the input will not get better);
any other exception is retried with backoff by the job runner.
"""

from __future__ import annotations

import codecs
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from backplane.core.config import Settings
from backplane.core.netguard import BlockedTarget, check_url, guarded_get

T = TypeVar("T")


class AgentInputError(Exception):
    """The job's input cannot be processed (unreadable file, page not found...). Not retried."""


class AgentModel(BaseModel):
    """Base for agents' input and config models: unknown fields are ignored, as the guide's SDKs send extras.

    Each field is also accepted in camelCase (`sourceType` for `source_type`), as the guide's JS SDK
    sends it; the schemas show the snake_case names.
    """

    model_config = ConfigDict(
        extra="ignore",
        str_strip_whitespace=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: AliasChoices(name, to_camel(name))),
    )


@dataclass(frozen=True, slots=True)
class AgentFile:
    id: str
    filename: str
    content_type: str
    type_name: str  # a key of backplane.files.types.TYPES: "pdf", "png", "txt", ...
    size_bytes: int
    storage_key: str


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file named by a job being created, as `Agent.check_input` sees it: its type, and its first bytes
    when the agent's `inspected_types` include that type (else None)."""

    id: str
    filename: str
    type_name: str
    size_bytes: int
    head: bytes | None = None


# Field errors found at creation: {"input_data.content": ["..."], "file_ids.0": ["..."]}.
FieldErrors = dict[str, list[str]]

HEAD_BYTES = 64 * 1024  # what `check_input` may read of an inspected file


def web_url_problem(url: str) -> str | None:
    """Why `url` can never be fetched (not http(s), no host, credentials), or None. Whether its host is
    public is decided when the job runs, by the guarded client, since it takes a DNS lookup."""
    try:
        check_url(url, allow_private=True)
    except BlockedTarget as exc:
        return str(exc)
    return None


@dataclass(slots=True)
class FetchedPage:
    url: str  # after redirects
    status_code: int
    content_type: str
    text: str


# (system prompt, user prompt) -> completion text; None when no LLM is configured.
LLMCall = Callable[[str, str], Awaitable[str]]


@dataclass(slots=True)
class AgentContext:
    job_id: str
    settings: Settings
    http: httpx.AsyncClient
    files: list[AgentFile]
    read_file: Callable[[AgentFile], Awaitable[bytes]]
    llm: LLMCall | None = None
    now: Callable[[], Any] | None = None  # datetime factory (UTC), overridable for tests
    extras: dict[str, Any] = field(default_factory=dict)
    # Where `progress` goes: the runner's (jobs/live.py), which callers of the job watch; none in tests.
    report: Callable[[float, str], Awaitable[None]] | None = None

    async def progress(self, fraction: float, message: str = "") -> None:
        """Tell whoever watches the job how far it is (0..1) and what it is doing (a short message:
        pages done, chunks transcribed). Never fails the job: a report that cannot be sent is dropped."""
        if self.report is not None:
            await self.report(min(1.0, max(0.0, float(fraction))), message[:200])

    async def parse(
        self, call: Callable[[], T], *, subject: str, on_pages: Callable[[int, int], Awaitable[None]] | None = None
    ) -> T:
        """`call()`, a parser given a customer's file, in a child process with CPU-time and memory limits
        (AGENT_PARSER_CPU_SECONDS, AGENT_PARSER_MEMORY_MB), killed if the job is cancelled or times out.

        `call` must pickle (a module-level function or a `functools.partial` of one); `subject` names
        the file in errors. A parser stopped by a limit raises `AgentInputError` (see agents/sandbox.py).
        `on_pages(done, total)` hears the pages the parser reports read (`parse_progress.page_done`).
        """
        from backplane.agents.sandbox import Limits, run_isolated  # the sandbox imports this module

        limits = Limits(
            cpu_seconds=self.settings.agent_parser_cpu_seconds,
            memory_bytes=self.settings.agent_parser_memory_mb * 1024 * 1024,
        )
        return await run_isolated(call, limits=limits, subject=subject, on_pages=on_pages)

    async def fetch(self, url: str, *, max_bytes: int = 5 * 1024 * 1024, http_timeout: float = 15.0) -> FetchedPage:
        """GET a customer URL: never loopback/private targets (unless WEBHOOK_ALLOW_PRIVATE_TARGETS), size-capped.

        Any status is returned (the caller decides what a 404 means). A refused target (`BlockedTarget`)
        and a transport failure (DNS, connection, timeout, too many redirects) raise `AgentInputError`,
        so the job fails at once with a message that names the URL instead of being retried.
        """
        allow = self.settings.webhook_allow_private_targets
        try:
            response = await guarded_get(
                self.http, url, allow_private=allow, stream=True, timeout=http_timeout, headers=_UNCOMPRESSED
            )
        except BlockedTarget as exc:
            raise AgentInputError(f"The URL {url} cannot be fetched: {exc}") from exc
        except httpx.HTTPError as exc:
            raise AgentInputError(f"The page at {url} could not be fetched: {_describe(exc)}") from exc
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"", "identity"}:
            await response.aclose()
            raise AgentInputError(
                f"The page at {url} was sent compressed ({encoding}) though it was asked for uncompressed; "
                "it is refused."
            )
        body = b""
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise AgentInputError(f"The page at {url} is larger than {max_bytes} bytes.")
        except httpx.HTTPError as exc:
            raise AgentInputError(f"The page at {url} could not be read: {_describe(exc)}") from exc
        finally:
            await response.aclose()
        charset = response.charset_encoding or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:  # a page that names an encoding nobody has: read it as UTF-8
            charset = "utf-8"
        # The request went to the checked address with the name in the Host header: put the name back.
        final_url = response.request.url.copy_with(netloc=response.request.headers["Host"].encode("ascii"))
        return FetchedPage(
            url=str(final_url),
            status_code=response.status_code,
            content_type=response.headers.get("content-type", ""),
            text=body.decode(charset, errors="replace"),
        )


# httpx decodes a compressed body a whole network chunk at a time, before `max_bytes` can be checked: one
# 64 KB gzip chunk may expand to 64 MB. Pages are asked for uncompressed, and refused if sent compressed.
_UNCOMPRESSED = {"Accept-Encoding": "identity"}


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "the site did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "the site refused or dropped the connection"
    return str(exc) or type(exc).__name__


class Agent(ABC):
    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[AgentModel]]
    config_model: ClassVar[type[AgentModel]]
    file_types: ClassVar[frozenset[str]] = frozenset()  # keys of files.types.TYPES
    max_file_bytes: ClassVar[int] = 0
    max_files: ClassVar[int] = 10
    time_limit_seconds: ClassVar[float] = 600.0
    # Types whose first HEAD_BYTES `check_input` reads (a CSV's header, say); the rest it judges by type.
    inspected_types: ClassVar[frozenset[str]] = frozenset()
    # How a completed job's output can be downloaded (`GET /v1/jobs/{id}/output?format=`); json is the stored output.
    output_formats: ClassVar[tuple[str, ...]] = ("json",)

    @abstractmethod
    async def run(self, ctx: AgentContext, input: Any, config: Any) -> dict[str, Any]: ...

    def check_input(self, input: Any, config: Any, files: Sequence[InputFile]) -> FieldErrors:
        """What in an already schema-valid input cannot produce output (no source, a file the agent cannot
        read, an empty CSV), found when the job is created so that it is refused before it is queued or
        counted. Field names as the request spells them (`input_data.url`, `file_ids.0`); empty when fine."""
        return {}

    def render(self, format_name: str, output: dict[str, Any]) -> bytes:
        """A completed job's `output` in one of `output_formats` other than json (CPU-bound: call it in a thread)."""
        raise NotImplementedError(f"{self.id} renders no {format_name}")

    def describe(self) -> dict[str, Any]:
        """What `GET /v1/agents/{id}/config` shows: schemas, file limits and output formats."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_model.model_json_schema(),
            "config_schema": self.config_model.model_json_schema(),
            "accepted_file_types": sorted(self.file_types),
            "max_file_bytes": self.max_file_bytes,
            "max_files": self.max_files,
            "time_limit_seconds": self.time_limit_seconds,
            "output_formats": list(self.output_formats),
        }
