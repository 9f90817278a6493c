"""Maya's formats, written from a source's sentences: the thread, the LinkedIn post, the newsletter, the LinkedIn
article and the content calendar, each offline (the source's own sentences in the chosen tone) or drafted by
the LLM when one is configured (checked, and offline again on any failure)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backplane.agents import llm
from backplane.agents.base import AgentContext
from backplane.agents.documents import Document
from backplane.agents.text import Scorer, key_terms, read_time, sentences, truncate, word_count
from backplane.agents.tone import VOICES, voiced

if TYPE_CHECKING:  # maya.py imports this module
    from backplane.agents.maya import Format, MayaConfig, MayaInput

LINKEDIN_MAX_CHARS = 3000  # LinkedIn's limit for a post
TWEET_MAX_CHARS = 280
CALENDAR_PLATFORMS = ("linkedin", "twitter")  # alternate, one post a weekday
_CALENDAR_TIMES = {"linkedin": "09:00", "twitter": "12:00"}  # UTC: the platforms' busy hours


class Writer:
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
