"""Maya on real sources: text, a blog page served on loopback, DOCX, Markdown and PDF files."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from backplane.agents.base import AgentInputError
from backplane.agents.maya import Maya, MayaInput, number_posts
from backplane.agents.text import sentences, words
from tests.agents import samples
from tests.agents.conftest import MakeContext
from tests.agents.helpers import run_agent
from tests.agents.sites import blog_app
from tests.fixtures.http_server import LoopbackServer, serve

ARTICLE = " ".join(samples.BLOG_PARAGRAPHS)
NUMBERED = re.compile(r"^(\d+)/(\d+) ")


@pytest.fixture
def blog() -> Iterator[LoopbackServer]:
    with serve(blog_app(), name="blog") as server:
        yield server


def post_bodies(thread: dict) -> list[str]:  # type: ignore[type-arg]
    """The posts without their "i/n " prefix, after checking the numbering and the lengths."""
    posts = thread["posts"]
    bodies = []
    for index, post in enumerate(posts, start=1):
        match = NUMBERED.match(post["text"])
        assert match, post["text"]
        assert (int(match.group(1)), int(match.group(2))) == (index, len(posts))
        assert post["char_count"] == len(post["text"])
        bodies.append(post["text"][match.end() :])
    return bodies


def assert_hashtags_from(tags: list[str], text: str) -> None:
    vocabulary = {w.lower() for w in words(text)}
    for tag in tags:
        assert tag.startswith("#")
        parts = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", tag[1:])
        assert parts and all(p.lower() in vocabulary for p in parts), (tag, "not from the text")


async def test_text_becomes_a_thread_of_whole_sentences(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"source_type": "text", "content": ARTICLE, "target_formats": ["twitter_thread"], "max_length": 140},
        {"thread_max_posts": 50},
    )

    thread = output["twitter_thread"]
    assert set(output) == {"source", "hashtags", "twitter_thread"}
    bodies = post_bodies(thread)
    assert all(p["char_count"] <= 140 for p in thread["posts"])
    assert len(bodies) > 5
    # The first post opens the thread; the rest, without the closing hashtags, is the source's sentences in order.
    assert bodies[0].startswith("🧵 City gardens: the key points.")
    joined = " ".join(bodies).removeprefix("🧵 City gardens: the key points. ")
    joined = joined.removesuffix(" " + " ".join(output["hashtags"]))
    assert joined == " ".join(sentences(ARTICLE))
    for body in bodies[1:]:
        assert body[0].isupper() or body.startswith("#"), f"a post starts mid-sentence: {body!r}"
    assert output["hashtags"] == ["#CityGardens", "#Composting", "#Soil"]
    assert_hashtags_from(output["hashtags"], ARTICLE)
    assert output["source"] == {
        "type": "text",
        "title": None,
        "word_count": len(words(ARTICLE)),
        "sentence_count": len(sentences(ARTICLE)),
    }


async def test_long_sentences_are_cut_at_clauses_then_words(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"content": ARTICLE, "target_formats": ["twitter"], "max_length": 60},
        {"thread_max_posts": 50},
    )

    posts = output["twitter_thread"]["posts"]
    post_bodies(output["twitter_thread"])
    assert max(p["char_count"] for p in posts) <= 60
    assert " ".join(words(" ".join(b for b in post_bodies(output["twitter_thread"])))).count("compost") >= 3


def test_numbering_width_grows_with_the_count() -> None:
    units = [f"Sentence number {n} is here." for n in range(40)]
    posts = number_posts(units, 40)
    assert len(posts) >= 10
    assert posts[0].startswith(f"1/{len(posts)} ") and posts[-1].startswith(f"{len(posts)}/{len(posts)} ")
    assert all(len(p) <= 40 for p in posts)


async def test_thread_keeps_the_best_sentences_when_too_long(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"content": ARTICLE, "target_formats": ["twitter_thread"], "include_hashtags": False},
        {"thread_max_posts": 2},
    )

    bodies = post_bodies(output["twitter_thread"])
    assert len(bodies) <= 2
    kept = sentences(" ".join(bodies).removeprefix("🧵 City gardens: the key points. "))
    source = sentences(ARTICLE)
    assert kept and all(s in source for s in kept)
    assert [source.index(s) for s in kept] == sorted(source.index(s) for s in kept)  # original order


async def test_linkedin_post_and_newsletter(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"content": ARTICLE, "target_formats": ["linkedin_post", "newsletter"], "tone": "professional"},
    )

    post = output["linkedin_post"]
    assert post["text"].startswith("City gardens: what matters, in brief.")
    assert post["text"].endswith(" ".join(output["hashtags"]))
    assert post["estimated_read_time"] == f"{max(1, math.ceil(len(words(post['text'])) / 200))} min"
    assert post["char_count"] == len(post["text"]) <= 3000
    letter = output["newsletter"]
    assert letter["subject"] == "City gardens"
    assert letter["intro"].startswith("Hello, this issue is about City gardens. Topics: city gardens, composting")
    assert 1 <= len(letter["sections"]) <= 4
    for section in letter["sections"]:
        assert all(s in sentences(ARTICLE) for s in sentences(section["body"]))
    assert letter["body"].startswith("# City gardens\n\n")
    assert all(f"## {s['heading']}" in letter["body"] for s in letter["sections"])


async def test_tone_changes_the_wording_deterministically(make_ctx: MakeContext) -> None:
    content = ARTICLE + " You do not need a big garden to start. It is easier than it looks."
    request = {"content": content, "target_formats": ["twitter_thread", "linkedin_post"]}
    formal = await run_agent(Maya(), make_ctx(), request | {"tone": "professional"})
    again = await run_agent(Maya(), make_ctx(), request | {"tone": "professional"})
    casual = await run_agent(Maya(), make_ctx(), request | {"tone": "casual"})

    assert formal == again
    assert casual["twitter_thread"]["posts"][0]["text"].startswith("1/")
    assert "🧵 Let's talk about City gardens 👇" in casual["twitter_thread"]["posts"][0]["text"]
    casual_text = " ".join(p["text"] for p in casual["twitter_thread"]["posts"])
    formal_text = " ".join(p["text"] for p in formal["twitter_thread"]["posts"])
    assert "You don't need a big garden to start." in casual_text
    assert "You do not need a big garden to start." in formal_text
    assert casual["linkedin_post"]["text"].startswith("Been thinking about City gardens lately 👇")


async def test_url_source_uses_the_pages_main_text(make_ctx: MakeContext, blog: LoopbackServer) -> None:
    output = await run_agent(
        Maya(),
        make_ctx(),
        {"source_type": "url", "url": f"{blog.url}/old-post", "target_formats": ["twitter_thread", "newsletter"]},
        {"extract_images": True, "thread_max_posts": 50},
    )

    assert output["source"]["url"] == f"{blog.url}/blog/composting"  # after the redirect, with the host name
    assert output["source"]["title"] == samples.BLOG_TITLE
    assert output["images"] == [f"{blog.url}/images/compost-bin.jpg"]
    everything = " ".join(p["text"] for p in output["twitter_thread"]["posts"]) + output["newsletter"]["body"]
    for paragraph in samples.BLOG_PARAGRAPHS:
        assert sentences(paragraph)[0] in everything
    for boilerplate in (samples.NAV_TEXT, samples.FOOTER_TEXT, "Trending", "Sports scores"):
        assert boilerplate not in everything
    assert output["newsletter"]["subject"] == samples.BLOG_TITLE
    assert_hashtags_from(output["hashtags"], ARTICLE)


async def test_url_errors_are_input_errors(make_ctx: MakeContext, blog: LoopbackServer, settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AgentInputError, match=r"answered HTTP 404"):
        await run_agent(Maya(), make_ctx(), {"url": f"{blog.url}/missing"})
    # With the guard on (the default), a loopback URL is refused before any connection.
    guarded = make_ctx(settings=settings)
    with pytest.raises(AgentInputError, match=r"cannot be fetched: The URL points at a private, loopback"):
        await run_agent(Maya(), guarded, {"url": f"{blog.url}/blog/composting"})
    with pytest.raises(AgentInputError, match=r"cannot be fetched: The URL must use http or https"):
        await run_agent(Maya(), guarded, {"url": "file:///etc/passwd"})
    closed = LoopbackServer(blog_app()).start()
    url = closed.url
    closed.stop()
    with pytest.raises(AgentInputError, match=r"could not be fetched: the site refused or dropped the connection"):
        await run_agent(Maya(), make_ctx(), {"url": f"{url}/blog/composting"})


async def test_plain_text_page(make_ctx: MakeContext, blog: LoopbackServer) -> None:
    output = await run_agent(Maya(), make_ctx(), {"url": f"{blog.url}/notes.txt", "target_formats": ["linkedin"]})
    assert output["source"]["word_count"] == len(words(ARTICLE))


async def test_docx_sections_become_newsletter_sections(make_ctx: MakeContext) -> None:
    document = samples.docx_file(
        "Composting at home",
        [
            ("Why compost", samples.BLOG_PARAGRAPHS[:2]),
            ("How to start", samples.BLOG_PARAGRAPHS[2:3]),
            ("Together", samples.BLOG_PARAGRAPHS[3:]),
        ],
    )
    output = await run_agent(Maya(), make_ctx({"guide.docx": document}), {"source_type": "file"})

    assert output["source"] == {
        "type": "file",
        "file_ids": ["file_1"],
        "title": "Composting at home",
        "word_count": len(words(ARTICLE)),
        "sentence_count": len(sentences(ARTICLE)),
    }
    letter = output["newsletter"]
    assert [s["heading"] for s in letter["sections"]] == ["Why compost", "How to start", "Together"]
    assert letter["subject"] == "Composting at home"
    assert "Getting started with composting is simple." in letter["sections"][1]["body"]
    assert set(output) >= {"twitter_thread", "linkedin_post", "newsletter"}


async def test_markdown_and_pdf_files(make_ctx: MakeContext) -> None:
    markdown = (
        f"# {samples.BLOG_TITLE}\n\n## Soil\n\n{samples.BLOG_PARAGRAPHS[1]}\n\n"
        f"## Start\n\n* {samples.BLOG_PARAGRAPHS[2]}\n* **Keep going.**\n"
    ).encode()
    output = await run_agent(Maya(), make_ctx({"post.md": markdown}), {"target_formats": ["newsletter"]})
    assert output["source"]["title"] == samples.BLOG_TITLE
    assert [s["heading"] for s in output["newsletter"]["sections"]] == ["Soil", "Start"]
    assert "Keep going." in output["newsletter"]["sections"][1]["body"]
    assert "**" not in output["newsletter"]["body"]

    pdf = samples.text_pdf(samples.BLOG_PARAGRAPHS, title="Compost report")
    output = await run_agent(
        Maya(), make_ctx({"report.pdf": pdf}), {"target_formats": ["twitter"]}, {"thread_max_posts": 50}
    )
    assert output["source"]["title"] == "Compost report"
    text = " ".join(post_bodies(output["twitter_thread"]))
    assert "Composting is the cheapest upgrade a city garden can make." in text


async def test_missing_files_are_refused(make_ctx: MakeContext) -> None:
    with pytest.raises(AgentInputError, match="needs at least one file"):
        await run_agent(Maya(), make_ctx(), {"source_type": "file"})
    with pytest.raises(AgentInputError, match="no text to repurpose"):
        await run_agent(Maya(), make_ctx(), {"content": "1234 5678 ..."})


async def test_summarize_first(make_ctx: MakeContext) -> None:
    output = await run_agent(
        Maya(), make_ctx(), {"content": ARTICLE, "target_formats": ["linkedin"]}, {"summarize_first": True}
    )
    summary = sentences(output["summary"])
    assert 5 <= len(summary) < len(sentences(ARTICLE))
    assert all(s in sentences(ARTICLE) for s in summary)


def test_input_accepts_the_js_sdk_spelling_and_refuses_bad_input() -> None:
    parsed = MayaInput.model_validate(
        {
            "sourceType": "text",
            "content": "Hi.",
            "targetFormats": ["twitter", "linkedin"],
            "includeHashtags": False,
            "maxLength": 200,
        }
    )
    assert parsed.source_type == "text"
    assert parsed.target_formats == ["twitter_thread", "linkedin_post"]
    assert parsed.include_hashtags is False and parsed.max_length == 200
    assert MayaInput.model_validate({"url": "https://example.com/a"}).source_type == "url"
    assert MayaInput.model_validate({}).source_type == "file"
    schema = MayaInput.model_json_schema()
    assert {"source_type", "target_formats", "max_length"} <= set(schema["properties"])

    for bad, message in [
        ({"source_type": "url"}, "source_type url needs `url`"),
        ({"source_type": "text"}, "source_type text needs `content`"),
        ({"content": "x", "target_formats": ["tiktok"]}, "target_formats.0"),
        ({"content": "x", "max_length": 10}, "max_length"),
        ({"content": "x", "tone": "sarcastic"}, "tone"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(message)):
            MayaInput.model_validate(bad)


async def test_a_docx_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    import io
    import zipfile

    from backplane.agents.base import AgentInputError
    from backplane.agents.documents import parse_docx

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<" * (300 * 1024 * 1024))  # ~300 KB packed
    with pytest.raises(AgentInputError, match="unpacks to more than 200 MB"):
        parse_docx(buffer.getvalue())
