"""HTML documents built as lxml trees: text from a job's input is only ever a text node or an attribute value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lxml import html as lxml_html
from lxml.html import HtmlElement
from lxml.html import builder as E

from backplane.agents.reports.text import clean

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1f2328; line-height: 1.5; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } .meta { color: #59636e; } .post { white-space: pre-wrap; }
.high { color: #b42318; font-weight: 600; } .medium { color: #9a6700; } .low { color: #59636e; }
.passed { color: #1a7f37; } .failed { color: #b42318; }
"""


def text(value: Any) -> str:
    return clean(value)


def table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> HtmlElement:
    """A table whose cells are text (or elements already built)."""
    head = E.THEAD(E.TR(*(E.TH(h) for h in headers)))
    body = E.TBODY(*(E.TR(*(_cell(value) for value in row)) for row in rows))
    return E.TABLE(head, body, id=table_id)


def _cell(value: Any) -> HtmlElement:
    if isinstance(value, HtmlElement):
        return E.TD(value)
    return E.TD(text(value))


def definitions(list_id: str, items: Iterable[tuple[str, Any]]) -> HtmlElement:
    children: list[HtmlElement] = []
    for term, value in items:
        children += [E.DT(text(term)), E.DD(text(value))]
    return E.DL(*children, id=list_id)


def section(section_id: str, heading: str, *children: Any) -> HtmlElement:
    return E.SECTION(E.H2(text(heading)), *children, id=section_id)


def document(title: str, *body: Any) -> bytes:
    """A whole HTML5 document, UTF-8."""
    tree = E.HTML(
        E.HEAD(E.META(charset="utf-8"), E.TITLE(text(title)), E.STYLE(_STYLE)),
        E.BODY(*body),
        lang="en",
    )
    rendered: bytes = lxml_html.tostring(tree, doctype="<!DOCTYPE html>", encoding="utf-8", method="html")
    return rendered
