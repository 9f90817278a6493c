"""Maya: one piece of content (text, a web page or a file) repurposed as a thread, a LinkedIn post, a newsletter.

Offline pipeline: the source's text and structure (documents.py) → sentences (pysbd) → key terms
(term frequency) → an extractive summary (sentences ranked by the key terms they carry) → each
format built from the source's own sentences in the chosen tone. With an LLM configured, each
format is drafted by the LLM instead, checked (a post longer than `max_length` is refused), and
falls back to the offline pipeline on any failure.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from backplane.agents import llm, transcribe
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
from backplane.agents.text import Scorer, hashtags, key_terms, read_time, sentences, truncate, word_count
from backplane.agents.tone import VOICES, Tone, voiced
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
LINKEDIN_MAX_CHARS = 3000  # LinkedIn's limit for a post
_MEDIA = {"mp3", "mp4", "wav"}  # transcribed first (agents/transcribe.py)
CALENDAR_PLATFORMS = ("linkedin", "twitter")  # alternate, one post a weekday
_CALENDAR_TIMES = {"linkedin": "09:00", "twitter": "12:00"}  # UTC: the platforms' busy hours
TWEET_MAX_CHARS = 280


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
) -> tuple[dict[str, Any], _Writer]:
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
    return output, _Writer(ctx, input, document, items, title, tags)


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


class _Writer:
    def __init__(
        self, ctx: AgentContext, input: MayaInput, document: Document, items: list[str], title: str, tags: list[str]
    ) -> None:
        self.ctx, self.input, self.document = ctx, input, document
        self.items, self.title, self.tags = items, title, tags
        self.voice = VOICES[input.tone]
        self.scorer = Scorer(document.text)

    async def write(self, name: Format, config: MayaConfig) -> dict[str, Any]:
        drafted = await self._llm(name, config)
        if drafted is not None:
            return drafted | {"generated_by": "llm"}
        if name == "twitter_thread":
            built = await asyncio.to_thread(self.thread, config.thread_max_posts)
        elif name == "linkedin_post":
            built = await asyncio.to_thread(self.linkedin)
        elif name == "linkedin_article":
            built = await asyncio.to_thread(self.article)
        elif name == "content_calendar":
            today = (self.ctx.now() if self.ctx.now is not None else datetime.now(UTC)).date()
            start = config.calendar_start or today + timedelta(days=1)
            built = await asyncio.to_thread(self.calendar, config.calendar_posts, start)
        else:
            built = await asyncio.to_thread(self.newsletter)
        return built | {"generated_by": "offline"}

    def _say(self, text: str) -> str:
        return voiced(text, self.input.tone)

    # -- offline formats ----------------------------------------------------------------------------

    def thread(self, max_posts: int) -> dict[str, Any]:
        """Numbered posts ("1/5 ...") of whole sentences, each at most max_length characters with its number.

        When the whole source does not fit in `max_posts` posts, the best-scoring sentences that do fit
        are kept, in their original order.
        """
        opener = self.voice.thread_opener.format(title=self.title)
        chosen = list(self.items)
        while True:
            units = [opener, *(self._say(s) for s in chosen)]
            if self.tags:
                units.append(" ".join(self.tags))
            posts = number_posts(units, self.input.max_length)
            if len(posts) <= max_posts or len(chosen) <= 1:
                break
            chosen = self.scorer.best(chosen, len(chosen) - max(1, len(chosen) // 10))
        posts = posts[:max_posts]
        return {"posts": [{"text": p, "char_count": len(p)} for p in posts], "post_count": len(posts)}

    def linkedin(self) -> dict[str, Any]:
        key_points = self.scorer.best(self.items, 5)
        tail = [self.voice.call_to_action]
        if self.tags:
            tail.append(" ".join(self.tags))
        while True:
            lead, *rest = key_points or [""]
            blocks = [self.voice.hook.format(title=self.title), self._say(lead)]
            blocks += [f"{self.voice.bullet} {self._say(point)}" for point in rest]
            text = "\n\n".join([b for b in blocks if b] + tail)
            if len(text) <= LINKEDIN_MAX_CHARS or len(key_points) <= 1:
                break
            key_points = key_points[:-1]
        text = truncate(text, LINKEDIN_MAX_CHARS)
        return {"text": text, "char_count": len(text), "estimated_read_time": read_time(text)}

    def newsletter(self) -> dict[str, Any]:
        sections = self._sections()
        subject = truncate(self.voice.subject.format(title=self.title), 90)
        preview = truncate(self._say(self.scorer.best(self.items, 1)[0]), 120)
        topics = ", ".join(t.text for t in key_terms(self.document.text, 3))
        intro = f"{self.voice.greeting} this issue is about {self.title}."
        if topics:
            intro += f" Topics: {topics}."
        parts = [f"# {subject}", intro]
        for section in sections:
            parts += [f"## {section['heading']}", section["body"]]
        parts.append(self.voice.sign_off)
        body = "\n\n".join(parts)
        return {
            "subject": subject,
            "preview_text": preview,
            "intro": intro,
            "sections": sections,
            "outro": self.voice.sign_off,
            "body": body,
            "estimated_read_time": read_time(body),
        }

    def article(self) -> dict[str, Any]:
        """A LinkedIn article: a title, an introduction (the source's key sentence), the source's own sections
        or its sentences grouped under their key terms, and a closing question."""
        title = truncate(self.title, 100)
        introduction = self._say(self.scorer.best(self.items, 1)[0])
        sections = self._sections()
        conclusion = self.voice.call_to_action
        parts = [f"# {title}", introduction]
        for section in sections:
            parts += [f"## {section['heading']}", section["body"]]
        parts.append(conclusion)
        if self.tags:
            parts.append(" ".join(self.tags))
        return _article(title, introduction, sections, conclusion, "\n\n".join(parts))

    def calendar(self, count: int, start: date) -> dict[str, Any]:
        """`count` posts (fewer when the source has fewer sentences), one a weekday from `start`, alternating
        LinkedIn and Twitter/X, each built on one of the source's key sentences (kept in the source's order)."""
        points = self.scorer.best(self.items, count)
        day = _weekday(start)
        posts = []
        for index, point in enumerate(points):
            platform = CALENDAR_PLATFORMS[index % len(CALENDAR_PLATFORMS)]
            tag = self.tags[index % len(self.tags)] if self.tags else ""
            if platform == "twitter":
                text = truncate(self._say(point), TWEET_MAX_CHARS - len(tag) - 1) + (f" {tag}" if tag else "")
            else:
                blocks = [self._say(point), self.voice.call_to_action, " ".join(self.tags)]
                text = truncate("\n\n".join(b for b in blocks if b), LINKEDIN_MAX_CHARS)
            terms = key_terms(point, 1)
            posts.append(
                {
                    "date": day.isoformat(),
                    "weekday": day.strftime("%A"),
                    "time": _CALENDAR_TIMES[platform],
                    "platform": platform,
                    "topic": terms[0].text if terms else None,
                    "text": text,
                    "char_count": len(text),
                }
            )
            day = _weekday(day + timedelta(days=1))
        return {
            "start_date": posts[0]["date"] if posts else start.isoformat(),
            "end_date": posts[-1]["date"] if posts else start.isoformat(),
            "timezone": "UTC",
            "post_count": len(posts),
            "posts": posts,
        }

    def _sections(self) -> list[dict[str, str]]:
        """The source's own headed sections (up to 5), else its sentences in up to 4 groups."""
        headed = [s for s in self.document.sections if s.heading]
        if len(headed) >= 2:
            groups = [(s.heading, sentences(" ".join(s.paragraphs))) for s in headed[:5]]
        else:
            size = max(1, -(-len(self.items) // 4))
            groups = [(None, self.items[i : i + size]) for i in range(0, 4 * size, size) if self.items[i : i + size]]
        out = []
        ranked = [t.text for t in key_terms(self.document.text, 20)]
        used: set[str] = set()
        for number, (heading, group) in enumerate(groups, start=1):
            if not group:
                continue
            if heading is None:
                # The group's best key term of the whole text that no earlier heading took.
                lowered = " ".join(group).lower()
                term = next((t for t in ranked if t.lower() in lowered and t not in used), None)
                if term is not None:
                    used.add(term)
                heading = f"{number}. {term[:1].upper() + term[1:]}" if term else f"Part {number}"
            out.append({"heading": heading, "body": " ".join(self._say(s) for s in self.scorer.best(group, 3))})
        return out

    # -- LLM drafts -----------------------------------------------------------------------------------

    async def _llm(self, name: Format, config: MayaConfig) -> dict[str, Any] | None:
        if self.ctx.llm is None or name == "content_calendar":  # the calendar's posts are the source's sentences
            return None
        source = truncate(" ".join(self.items), 12_000)
        system = (
            f"You are Maya, a content repurposing writer. Write in a {self.input.tone.value} tone. "
            "Use only facts from the source."
        )
        if name == "twitter_thread":
            budget = self.input.max_length - len(f"{config.thread_max_posts}/{config.thread_max_posts} ")
            answer = await llm.draft_json(
                self.ctx,
                system,
                f'Write a Twitter thread as {{"posts": ["..."]}}: at most {config.thread_max_posts} posts, each at '
                f"most {budget} characters, without numbering or hashtags.\n\nSource:\n{source}",
            )
            posts = answer.get("posts") if isinstance(answer, dict) else None
            if not isinstance(posts, list) or not posts or len(posts) > config.thread_max_posts:
                return None
            if not all(isinstance(p, str) and 0 < len(p.strip()) <= budget for p in posts):
                return None
            numbered = [f"{i}/{len(posts)} {p.strip()}" for i, p in enumerate(posts, start=1)]
            return {"posts": [{"text": p, "char_count": len(p)} for p in numbered], "post_count": len(numbered)}
        if name == "linkedin_post":
            text = await llm.draft(
                self.ctx,
                system,
                f"Write a LinkedIn post (at most {LINKEDIN_MAX_CHARS - 200} characters, plain text, no hashtags) "
                f"from this source:\n{source}",
            )
            if text is None or len(text) > LINKEDIN_MAX_CHARS - 200:
                return None
            if self.tags:
                text = f"{text}\n\n{' '.join(self.tags)}"
            return {"text": text, "char_count": len(text), "estimated_read_time": read_time(text)}
        if name == "linkedin_article":
            return await self._llm_article(system, source)
        answer = await llm.draft_json(
            self.ctx,
            system,
            'Write a newsletter as {"subject": "...", "preview_text": "...", "intro": "...", '
            '"sections": [{"heading": "...", "body": "..."}], "outro": "..."} from this source:\n' + source,
        )
        if not isinstance(answer, dict):
            return None
        sections = answer.get("sections")
        fields = [answer.get(k) for k in ("subject", "preview_text", "intro", "outro")]
        if not all(isinstance(f, str) and f for f in fields) or not isinstance(sections, list) or not sections:
            return None
        if not all(
            isinstance(s, dict) and isinstance(s.get("heading"), str) and isinstance(s.get("body"), str)
            for s in sections
        ):
            return None
        subject, preview, intro, outro = (str(f) for f in fields)
        clean = [{"heading": s["heading"], "body": s["body"]} for s in sections]
        body = "\n\n".join([f"# {subject}", intro, *(f"## {s['heading']}\n\n{s['body']}" for s in clean), outro])
        return {
            "subject": subject,
            "preview_text": preview,
            "intro": intro,
            "sections": clean,
            "outro": outro,
            "body": body,
            "estimated_read_time": read_time(body),
        }

    async def _llm_article(self, system: str, source: str) -> dict[str, Any] | None:
        answer = await llm.draft_json(
            self.ctx,
            system,
            'Write a LinkedIn article as {"title": "...", "introduction": "...", "sections": [{"heading": "...", '
            '"body": "..."}], "conclusion": "..."} from this source:\n' + source,
        )
        if not isinstance(answer, dict):
            return None
        fields = [answer.get(k) for k in ("title", "introduction", "conclusion")]
        sections = answer.get("sections")
        if not all(isinstance(f, str) and f for f in fields) or not isinstance(sections, list) or not sections:
            return None
        if not all(
            isinstance(s, dict) and isinstance(s.get("heading"), str) and isinstance(s.get("body"), str)
            for s in sections
        ):
            return None
        title, introduction, conclusion = (str(f) for f in fields)
        clean = [{"heading": s["heading"], "body": s["body"]} for s in sections]
        body = "\n\n".join(
            [f"# {title}", introduction, *(f"## {s['heading']}\n\n{s['body']}" for s in clean), conclusion]
        )
        return _article(title, introduction, clean, conclusion, body)


def _article(
    title: str, introduction: str, sections: list[dict[str, str]], conclusion: str, body: str
) -> dict[str, Any]:
    return {
        "title": title,
        "introduction": introduction,
        "sections": sections,
        "conclusion": conclusion,
        "body": body,
        "word_count": word_count(body),
        "char_count": len(body),
        "estimated_read_time": read_time(body),
    }


def _weekday(day: date) -> date:
    """`day`, or the Monday after it when it falls on a weekend."""
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day


def _pieces(unit: str, budget: int) -> list[str]:
    """A sentence too long for one post, cut at clause boundaries, else between words, else anywhere."""
    if len(unit) <= budget:
        return [unit]
    for separator in ("; ", ", ", " "):
        if separator in unit:
            head, out = "", []
            for part in unit.split(separator):
                candidate = f"{head}{separator}{part}" if head else part
                if len(candidate) <= budget:
                    head = candidate
                    continue
                if head:
                    out.append(head + separator.rstrip())
                head = part
            out.append(head)
            if all(len(p) <= budget for p in out):
                return [p.rstrip() for p in out if p.strip()]
            return [q for p in out for q in _pieces(p, budget)]
    return [unit[i : i + budget] for i in range(0, len(unit), budget)]


def _pack(units: list[str], budget: int) -> list[str]:
    """Units joined greedily into chunks of at most `budget` characters, never splitting a unit that fits."""
    chunks: list[str] = []
    current = ""
    for unit in units:
        for piece in _pieces(unit, budget):
            if current and len(current) + 1 + len(piece) <= budget:
                current = f"{current} {piece}"
            else:
                if current:
                    chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def number_posts(units: list[str], max_length: int) -> list[str]:
    """`units` (sentences) packed into posts numbered "i/n ", each at most `max_length` characters in all."""
    count = 1
    for _ in range(6):  # the prefix's width depends on the count; settles in two or three rounds
        prefix = len(f"{count}/{count} ")
        chunks = _pack(units, max_length - prefix)
        if len(str(len(chunks))) <= len(str(count)):
            break
        count = len(chunks)
    total = len(chunks)
    return [f"{i}/{total} {chunk}" for i, chunk in enumerate(chunks, start=1)]
