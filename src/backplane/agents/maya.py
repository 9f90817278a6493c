"""Maya: one piece of content (text, a web page, a document or a recording) repurposed as a thread, a LinkedIn
post, a newsletter, a LinkedIn article or a content calendar.

Offline pipeline: the source's text and structure (documents.py; a recording's transcript from
transcribe.py, one sentence per stretch of speech) → sentences (pysbd) → key terms (term frequency)
→ an extractive summary (sentences ranked by the key terms they carry) → each format built from the
source's own sentences in the chosen tone (repurpose.py). With an LLM configured, each format but the
calendar is drafted by the LLM instead, checked (a post longer than `max_length` is refused), and
falls back to the offline pipeline on any failure.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from backplane.agents import transcribe
from backplane.agents.base import (
    Agent,
    AgentContext,
    AgentFile,
    AgentInputError,
    AgentModel,
    FieldErrors,
    InputFile,
    web_url_problem,
)
from backplane.agents.documents import Document, parse_file, parse_html, parse_plain
from backplane.agents.reports import maya as reports
from backplane.agents.repurpose import LINKEDIN_MAX_CHARS, Writer, number_posts
from backplane.agents.text import Scorer, hashtags, key_terms, sentences, truncate, word_count
from backplane.agents.tone import Tone
from backplane.files.types import AGENT_FILES

Format = Literal["twitter_thread", "linkedin_post", "newsletter", "linkedin_article", "content_calendar"]
FORMATS: tuple[Format, ...] = ("twitter_thread", "linkedin_post", "newsletter")  # the default ones
# The guide's SDK examples write the short names.
_FORMAT_ALIASES: dict[str, Format] = {
    "twitter": "twitter_thread",
    "thread": "twitter_thread",
    "x": "twitter_thread",
    "linkedin": "linkedin_post",
    "email": "newsletter",
    "article": "linkedin_article",
    "calendar": "content_calendar",
}
MAX_SOURCE_CHARS = 200_000  # longer sources are cut here (reported as `source.truncated`)
_MEDIA = {"mp3", "mp4", "wav"}  # transcribed first (agents/transcribe.py)


class MayaInput(AgentModel):
    source_type: Literal["text", "url", "file"] | None = Field(
        default=None,
        description="Where the content comes from. Inferred when omitted: `content` → text, `url` → url, "
        "otherwise the job's files.",
        examples=["url"],
    )
    content: str | None = Field(
        default=None, max_length=MAX_SOURCE_CHARS, description="The content itself (source_type text)."
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        description="A public web page to repurpose (source_type url).",
        examples=["https://example.com/blog-post"],
    )
    target_formats: list[Format] = Field(
        default_factory=lambda: list(FORMATS),
        min_length=1,
        description="Formats to produce: twitter_thread, linkedin_post, newsletter (the default three), "
        "linkedin_article (a long-form article with headed sections) and content_calendar (dated posts across "
        "LinkedIn and Twitter/X, one a weekday). `twitter`, `linkedin`, `email`, `article` and `calendar` are "
        "accepted as short names.",
        examples=[["twitter_thread", "linkedin_post", "newsletter"]],
    )
    tone: Tone = Field(default=Tone.professional, description="Wording of openers, calls to action and greetings.")
    include_hashtags: bool = Field(default=True, description="Add hashtags made from the content's key terms.")
    max_length: int = Field(default=280, ge=60, le=25_000, description="Longest thread post, in characters.")
    _inferred: bool = PrivateAttr(default=False)  # source_type was not given, but inferred

    @field_validator("target_formats", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            names = [_FORMAT_ALIASES.get(v.lower(), v.lower()) if isinstance(v, str) else v for v in value]
            return list(dict.fromkeys(names))
        return value

    @model_validator(mode="after")
    def _source(self) -> MayaInput:
        if self.source_type is None:
            self.source_type = "text" if self.content else "url" if self.url else "file"
            self._inferred = True
        if self.source_type == "text" and not self.content:
            raise ValueError("source_type text needs `content`")
        if self.source_type == "url" and not self.url:
            raise ValueError("source_type url needs `url`")
        return self


class MayaConfig(AgentModel):
    extract_images: bool = Field(default=False, description="List the web page's article images (url sources).")
    summarize_first: bool = Field(
        default=False, description="Condense the source to its key sentences before writing the formats."
    )
    thread_max_posts: int = Field(default=12, ge=1, le=50, description="Most posts in a thread.")
    calendar_posts: int = Field(default=10, ge=1, le=60, description="Posts in a content_calendar.")
    calendar_start: date | None = Field(
        default=None,
        description="The content_calendar's first day (moved to the next weekday if it falls on a weekend); "
        "default: the next weekday after today (UTC).",
        examples=["2026-12-01"],
    )


class Maya(Agent):
    id = "maya"
    name = "Maya - Content Repurposing"
    description = (
        "Turns a text, a web page, a document (txt, md, pdf, docx) or a recording (mp3, mp4, wav: transcribed "
        "offline, with timings) into a numbered Twitter/X thread, a LinkedIn post with its reading time, a "
        "newsletter, a LinkedIn article and a content calendar, with hashtags from the content's key terms."
    )
    input_model = MayaInput
    config_model = MayaConfig
    file_types, max_file_bytes = AGENT_FILES["maya"]
    # A blank text file, and a "fast start" MP4 with no sound, are known before the job runs.
    inspected_types = frozenset({"txt", "md", "mp4"})
    output_formats = ("json", "markdown", "text")

    def check_input(self, input: MayaInput, config: MayaConfig, files: Sequence[InputFile]) -> FieldErrors:
        errors: FieldErrors = {}
        if input.source_type == "text" and input.content is not None and word_count(input.content) == 0:
            errors["input_data.content"] = ["The content has no words to repurpose."]
        if input.source_type == "url" and input.url is not None and (problem := web_url_problem(input.url)):
            errors["input_data.url"] = [problem]
        if input.source_type == "file" and not files:
            if input._inferred:
                errors["input_data.content"] = [
                    "Maya needs something to repurpose: `content` (text), a `url`, or files (`file_ids` or an upload)."
                ]
            else:
                errors["file_ids"] = ["source_type file needs at least one file (file_ids or an upload)."]
        for index, file in enumerate(files):
            if file.type_name == "mp4" and file.head is not None and transcribe.mp4_without_audio(file.head):
                errors[f"file_ids.{index}"] = [f"{file.filename} has no audio track to transcribe."]
        if input.source_type == "file" and files and all(_blank(f) for f in files):
            for index, file in enumerate(files):
                errors[f"file_ids.{index}"] = [f"{file.filename} has no words to repurpose."]
        return errors

    def render(self, format_name: str, output: dict[str, Any]) -> bytes:
        return reports.markdown(output) if format_name == "markdown" else reports.text(output)

    async def run(self, ctx: AgentContext, input: MayaInput, config: MayaConfig) -> dict[str, Any]:
        document, source, transcript = await _load(ctx, input)
        # The text work is CPU-bound (up to a second on the longest sources): off the event loop.
        output, writer = await asyncio.to_thread(_prepare, ctx, input, config, document, source)
        if transcript is not None:
            output["transcript"] = transcript.as_output()
        for name in input.target_formats:
            output[name] = await writer.write(name, config)
        if config.extract_images:
            output["images"] = document.images
        return output


def _blank(file: InputFile) -> bool:
    """A text file read whole at creation that holds no word."""
    if file.type_name not in {"txt", "md"} or file.head is None or file.size_bytes > len(file.head):
        return False
    return word_count(file.head.decode("utf-8", errors="replace")) == 0


def _topic(text: str) -> str | None:
    """A title for an untitled source: its top key term ("Remote work")."""
    terms = key_terms(text, 1)
    return terms[0].text[:1].upper() + terms[0].text[1:] if terms else None


def _prepare(
    ctx: AgentContext, input: MayaInput, config: MayaConfig, document: Document, source: dict[str, Any]
) -> tuple[dict[str, Any], Writer]:
    text = document.text
    if word_count(text) == 0:
        raise AgentInputError("The source has no text to repurpose.")
    if len(text) > MAX_SOURCE_CHARS:
        document = parse_plain(text[:MAX_SOURCE_CHARS])
        source["truncated"] = True
    items = sentences(document.text)
    source.update(title=document.title, word_count=word_count(document.text), sentence_count=len(items))
    output: dict[str, Any] = {"source": source}
    if config.summarize_first:
        items = Scorer(document.text).best(items, max(5, len(items) // 3))
        output["summary"] = " ".join(items)
    tags = hashtags(document.text, 3) if input.include_hashtags else []
    if input.include_hashtags:
        output["hashtags"] = tags
    title = document.title or _topic(document.text) or truncate(items[0], 70)
    return output, Writer(ctx, input, document, items, title, tags)


async def _load(ctx: AgentContext, input: MayaInput) -> tuple[Document, dict[str, Any], transcribe.Transcript | None]:
    if input.source_type == "text":
        assert input.content is not None
        return parse_plain(input.content), {"type": "text"}, None
    if input.source_type == "url":
        assert input.url is not None
        page = await ctx.fetch(input.url)
        if page.status_code >= 400:
            raise AgentInputError(f"The page at {input.url} answered HTTP {page.status_code}.")
        origin = {"type": "url", "url": page.url}
        if "html" not in page.content_type and not page.text.lstrip().startswith("<"):
            return parse_plain(page.text), origin, None
        return await asyncio.to_thread(parse_html, page.text, page.url), origin, None
    if not ctx.files:
        raise AgentInputError("source_type file needs at least one file (file_ids or an upload).")
    for file in ctx.files:
        if file.type_name not in Maya.file_types:
            raise AgentInputError(f"{file.filename}: Maya does not read {file.type_name} files.")
    transcript = await _transcribe(ctx, [f for f in ctx.files if f.type_name in _MEDIA])
    parts: list[Document] = []
    for file in ctx.files:
        if file.type_name in _MEDIA:
            assert transcript is not None
            parts.append(parse_plain(_spoken_text([s for s in transcript.segments if s["file_id"] == file.id])))
            continue
        data = await ctx.read_file(file)
        parts.append(await ctx.parse(partial(parse_file, file.type_name, data), subject=file.filename))
    merged = Document(
        title=next((d.title for d in parts if d.title), None),
        sections=[s for d in parts for s in d.sections],
    )
    if transcript is not None and word_count(merged.text) == 0:
        names = ", ".join(f.filename for f in ctx.files if f.type_name in _MEDIA)
        raise AgentInputError(f"No speech was recognised in {names}.")
    return merged, {"type": "file", "file_ids": [f.id for f in ctx.files]}, transcript


async def _transcribe(ctx: AgentContext, media: list[AgentFile]) -> transcribe.Transcript | None:
    """The media files' speech: each written to a temporary file, which FFmpeg reads a chunk at a time."""
    if not media:
        return None
    with tempfile.TemporaryDirectory(prefix="maya-media-") as folder:
        written = []
        for file in media:
            path = Path(folder) / file.id
            await asyncio.to_thread(path.write_bytes, await ctx.read_file(file))
            written.append((file, str(path)))
        return await transcribe.transcribe(ctx, written)


def _spoken_text(segments: list[dict[str, Any]]) -> str:
    """Segments as sentences: a recogniser's unpunctuated words capitalised and closed with a full stop."""
    out = []
    for segment in segments:
        text = " ".join(str(segment["text"]).split())
        if not text:
            continue
        text = text[:1].upper() + text[1:]
        out.append(text if text[-1] in ".!?" else text + ".")
    return "\n\n".join(out)


__all__ = ["LINKEDIN_MAX_CHARS", "Maya", "MayaConfig", "MayaInput", "number_posts"]
