"""Maya's output as Markdown and as plain text: each format Maya wrote, in the order she wrote them."""

from __future__ import annotations

from typing import Any

from backplane.agents.reports.text import as_dict, as_list, clean

_TITLES = {
    "twitter_thread": "Twitter/X thread",
    "linkedin_post": "LinkedIn post",
    "newsletter": "Newsletter",
    "linkedin_article": "LinkedIn article",
    "content_calendar": "Content calendar",
}
_PLATFORMS = {"linkedin": "LinkedIn", "twitter": "Twitter/X"}
_NOT_FORMATS = {"source", "summary", "hashtags", "images", "transcript"}


def _blocks(output: dict[str, Any]) -> list[tuple[int, str, list[str]]]:
    """(heading level, heading, paragraphs), the same for both renderings."""
    source = as_dict(output.get("source"))
    title = clean(source.get("title")) or "Repurposed content"
    origin = clean(source.get("url")) or clean(source.get("type")) or "input"
    facts = f"Source: {origin}"
    if source.get("word_count") is not None:
        facts += f", {clean(source.get('word_count'))} words"
    blocks: list[tuple[int, str, list[str]]] = [(1, title, [facts])]
    if output.get("summary"):
        blocks.append((2, "Summary", [clean(output["summary"])]))
    for name, value in output.items():
        if name in _NOT_FORMATS or not isinstance(value, dict):
            continue
        blocks += _format_blocks(name, value)
    transcript = as_dict(output.get("transcript"))
    segments = [s for s in as_list(transcript.get("segments")) if isinstance(s, dict)]
    if segments:
        blocks.append(
            (
                2,
                "Transcript",
                [f"[{_clock(s.get('start'))}-{_clock(s.get('end'))}] {clean(s.get('text'))}" for s in segments],
            )
        )
    tags = [clean(t) for t in as_list(output.get("hashtags"))]
    if tags:
        blocks.append((2, "Hashtags", [" ".join(tags)]))
    images = [clean(i.get("src") if isinstance(i, dict) else i) for i in as_list(output.get("images"))]
    if images:
        blocks.append((2, "Images", images))
    return blocks


def _format_blocks(name: str, value: dict[str, Any]) -> list[tuple[int, str, list[str]]]:
    heading = _TITLES.get(name, name.replace("_", " ").capitalize())
    if name == "twitter_thread":
        return [(2, heading, [clean(p.get("text")) for p in as_list(value.get("posts")) if isinstance(p, dict)])]
    if name == "linkedin_post":
        paragraphs = [clean(value.get("text"))]
        if value.get("estimated_read_time"):
            paragraphs.append(f"Estimated read time: {clean(value['estimated_read_time'])}")
        return [(2, heading, paragraphs)]
    if name == "newsletter":
        out = [
            (
                2,
                heading,
                [
                    f"Subject: {clean(value.get('subject'))}",
                    f"Preview: {clean(value.get('preview_text'))}",
                    clean(value.get("intro")),
                ],
            )
        ]
        for part in as_list(value.get("sections")):
            if isinstance(part, dict):
                out.append((3, clean(part.get("heading")), [clean(part.get("body"))]))
        if value.get("outro"):
            out.append((3, "Sign-off", [clean(value["outro"])]))
        return out
    if name == "linkedin_article":
        out = [(2, f"{heading}: {clean(value.get('title'))}", [clean(value.get("introduction"))])]
        for part in as_list(value.get("sections")):
            if isinstance(part, dict):
                out.append((3, clean(part.get("heading")), [clean(part.get("body"))]))
        out.append((3, "Conclusion", [clean(value.get("conclusion")), _read_time(value)]))
        return out
    if name == "content_calendar":
        posts = [p for p in as_list(value.get("posts")) if isinstance(p, dict)]
        out = [
            (2, heading, [f"{clean(value.get('start_date'))} to {clean(value.get('end_date'))}, {len(posts)} posts"])
        ]
        for post in posts:
            platform = _PLATFORMS.get(clean(post.get("platform")), clean(post.get("platform")))
            when = f"{clean(post.get('weekday'))} {clean(post.get('date'))} {clean(post.get('time'))} UTC"
            out.append((3, f"{when}, {platform}", [clean(post.get("text"))]))
        return out
    # A format without a dedicated layout: its text fields, one paragraph each.
    return [(2, heading, [f"{k}: {clean(v)}" for k, v in value.items() if isinstance(v, str | int | float)])]


def _clock(seconds: Any) -> str:
    """Seconds as m:ss (h:mm:ss past an hour), as players show a position."""
    whole = int(seconds) if isinstance(seconds, int | float) and seconds >= 0 else 0
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _read_time(value: dict[str, Any]) -> str:
    return f"Estimated read time: {clean(value['estimated_read_time'])}" if value.get("estimated_read_time") else ""


def _paragraphs(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if line and line.strip()]


def markdown(output: dict[str, Any]) -> bytes:
    parts: list[str] = []
    for level, heading, paragraphs in _blocks(output):
        parts.append(f"{'#' * level} {' '.join(heading.split())}")
        parts += _paragraphs(paragraphs)
    return ("\n\n".join(parts) + "\n").encode()


def text(output: dict[str, Any]) -> bytes:
    parts: list[str] = []
    for level, heading, paragraphs in _blocks(output):
        line = " ".join(heading.split())
        underline = "=" if level == 1 else "-" if level == 2 else ""
        parts.append(f"{line}\n{underline * len(line)}" if underline else line.upper())
        parts += _paragraphs(paragraphs)
    return ("\n\n".join(parts) + "\n").encode()
