"""Plain-text tools the offline pipelines share: sentences, key terms, hashtags, summaries, read time.

Sentence boundaries are found by a small rule set written here (a full stop, question or exclamation
mark followed by space and a capital, a digit or a quote, unless the word before it is a known
abbreviation or an initial): pysbd, the usual rule-based library, has been unmaintained since 2021
and no longer compiles cleanly on current Python (invalid escape sequences). Key terms are
term frequency minus stop words: the libraries that do more (YAKE, RAKE) need downloaded corpora or
pull numpy and networkx, and frequency is what a hashtag needs. Ties break on first appearance, so
the same text always gives the same terms.

The stop words are NLTK's English list, written out here: NLTK ships it only as a corpus to
download, and the stop-words package's 1,333-word list drops topic words such as "work" and "ai".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

WORDS_PER_MINUTE = 200  # a common adult silent-reading speed for non-fiction
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['\u2019-][A-Za-z0-9]+)*")
_SPACES = re.compile(r"\s+")
_HASHTAG_PART = re.compile(r"[A-Za-z0-9]+")


_STOP_WORDS = frozenset(
    """
    a about above after again against ain all am an and any are aren aren't as at be because been before
    being below between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don
    don't down during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he
    her here hers herself him himself his how i if in into is isn isn't it it's its itself just ll m ma me
    mightn mightn't more most mustn mustn't my myself needn needn't no nor not now o of off on once only or
    other our ours ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't
    so some such t than that that'll the their theirs them themselves then there these they this those
    through to too under until up ve very was wasn wasn't we were weren weren't what when where which while
    who whom why will with won won't wouldn wouldn't y you you'd you'll you're you've your yours yourself
    yourselves
    also any many much may might must one could would shall every etc via let lets get got like just really
    thing things lot today yes i'm we're they're it's here's there's what's
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


def normalize(text: str) -> str:
    """One line of text: runs of whitespace become one space."""
    return _SPACES.sub(" ", text).strip()


_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt no nos vs etc e.g i.e inc ltd co corp jan feb mar apr jun jul aug sep sept
    oct nov dec fig al approx dept est u.s u.k
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
# A candidate boundary: end punctuation (and closing quotes/brackets), spaces, then a sentence start.
_BOUNDARY = re.compile(r"""([.!?…]+["'\u201d\u2019)\]]*)\s+(?=["'\u201c\u2018(\[]?[A-Z0-9])""")


def sentences(text: str) -> list[str]:
    """The sentences of `text`, each on one line without surrounding spaces."""
    text = normalize(text)
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end(1)
        before = text[start : match.start(1)].rsplit(" ", 1)[-1].lower()
        if match.group(1).startswith(".") and (before in _ABBREVIATIONS or re.fullmatch(r"[a-z]", before)):
            continue  # "Dr. Smith", "J. Smith": not the end of a sentence
        out.append(text[start:end])
        start = match.end()
    if text[start:].strip():
        out.append(text[start:].strip())
    return [s for s in out if s]


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def word_count(text: str) -> int:
    return len(words(text))


def read_time(text: str) -> str:
    """Estimated reading time as the guide writes it ("3 min"), at WORDS_PER_MINUTE, at least 1 min."""
    return f"{max(1, math.ceil(word_count(text) / WORDS_PER_MINUTE))} min"


def is_stop_word(word: str) -> bool:
    """A stop word, unless written as an acronym ("AI", "SEO" are topics, "ai" in the list is not)."""
    if len(word) >= 2 and word.isupper():
        return False
    return word.lower().replace("\u2019", "'") in _STOP_WORDS or len(word) < 3


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as the content most often writes it ("AI", "remote work")
    count: int


def key_terms(text: str, limit: int = 5) -> list[Term]:
    """The content's most frequent non-stop-word terms; a two-word phrase seen at least twice counts too.

    A phrase's words are not counted again on their own, so "remote work" does not also yield "remote".
    """
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    first_seen: dict[str, int] = {}
    position = 0
    for sentence in sentences(text) or [text]:
        previous: str | None = None
        for token in words(sentence):
            position += 1
            if is_stop_word(token) or token.isdigit():
                previous = None
                continue
            key = token.lower()
            unigrams[key] += 1
            surface.setdefault(key, Counter())[token] += 1
            first_seen.setdefault(key, position)
            if previous is not None:
                pair = f"{previous} {key}"
                bigrams[pair] += 1
                first_seen.setdefault(pair, position)
            previous = key
    scored: dict[str, int] = {}
    for pair, count in bigrams.items():
        if count >= 2:
            scored[pair] = count * 2  # a repeated phrase is more specific than either of its words
    covered = {word for pair in scored for word in pair.split()}
    for word, count in unigrams.items():
        if word in covered and unigrams[word] <= max(bigrams[p] for p in scored if word in p.split()):
            continue
        scored[word] = count
    ranked = sorted(scored, key=lambda k: (-scored[k], first_seen[k]))[:limit]

    def shown(key: str) -> str:
        return " ".join(surface[w].most_common(1)[0][0] for w in key.split())

    return [Term(shown(k), unigrams[k] if " " not in k else bigrams[k]) for k in ranked]


def hashtag(term: str) -> str:
    """ "remote work" -> "#RemoteWork"; acronyms keep their case ("AI" -> "#AI")."""
    parts = _HASHTAG_PART.findall(term)
    return "#" + "".join(p if p.isupper() else p[:1].upper() + p[1:] for p in parts) if parts else ""


def hashtags(text: str, limit: int = 3) -> list[str]:
    """Hashtags of the text's key terms, skipping a word already in a chosen phrase ("city" after "city gardens")."""
    tags: list[str] = []
    taken: set[str] = set()
    for term in key_terms(text, limit * 3):
        tag = hashtag(term.text)
        parts = {w.lower() for w in words(term.text)}
        if len(tag) < 2 or parts <= taken:
            continue
        tags.append(tag)
        taken |= parts
        if len(tags) == limit:
            break
    return tags


class Scorer:
    """Ranks sentences by the text's key terms they carry (per word): the basis of extractive summaries."""

    def __init__(self, text: str, terms: int = 15) -> None:
        self._patterns = [
            (re.compile(rf"\b{re.escape(t.text.lower())}\b"), float(t.count)) for t in key_terms(text, terms)
        ]

    def score(self, sentence: str) -> float:
        lowered = sentence.lower()
        hits = sum(weight for pattern, weight in self._patterns if pattern.search(lowered))
        return hits / math.sqrt(max(1, word_count(sentence)))

    def best(self, items: list[str], count: int) -> list[str]:
        """The `count` highest-scoring sentences, in their original order (ties: the earlier one)."""
        if len(items) <= count:
            return list(items)
        scores = [self.score(s) for s in items]
        chosen = sorted(range(len(items)), key=lambda i: (-scores[i], i))[:count]
        return [items[i] for i in sorted(chosen)]


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut at a word boundary so that it (with the ellipsis) fits in `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ellipsis))]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-") + ellipsis
