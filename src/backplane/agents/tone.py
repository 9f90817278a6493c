"""Tones the writing agents (maya, jordan) take, and the wording each one uses.

A tone picks fixed phrasings (openers, calls to action, greetings) and a contraction style, so the
same input and tone always give the same text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Tone(StrEnum):
    professional = "professional"
    casual = "casual"
    friendly = "friendly"
    enthusiastic = "enthusiastic"
    thought_leadership = "thought_leadership"
    educational = "educational"


@dataclass(frozen=True, slots=True)
class Voice:
    thread_opener: str  # first words of a thread; {title}
    hook: str  # a LinkedIn post's first line; {title}
    call_to_action: str
    greeting: str
    sign_off: str
    subject: str  # a newsletter subject; {title}
    bullet: str
    contractions: bool  # casual voices write "don't", formal ones "do not"


VOICES: dict[Tone, Voice] = {
    Tone.professional: Voice(
        thread_opener="🧵 {title}: the key points.",
        hook="{title}: what matters, in brief.",
        call_to_action="How does this compare with your experience? I would value your perspective in the comments.",
        greeting="Hello,",
        sign_off="Thank you for reading.",
        subject="{title}",
        bullet="▪",
        contractions=False,
    ),
    Tone.casual: Voice(
        thread_opener="🧵 Let's talk about {title} 👇",
        hook="Been thinking about {title} lately 👇",
        call_to_action="What do you think? Drop it in the comments!",
        greeting="Hey there 👋",
        sign_off="Catch you next time!",
        subject="Quick read: {title}",
        bullet="👉",
        contractions=True,
    ),
    Tone.friendly: Voice(
        thread_opener="🧵 A friendly walk through {title} 😊",
        hook="I'd love to share a few thoughts on {title} 😊",
        call_to_action="I'd love to hear how this lands for you, share your thoughts below!",
        greeting="Hi friend,",
        sign_off="Take care, and talk soon!",
        subject="Something for you: {title}",
        bullet="✅",
        contractions=True,
    ),
    Tone.enthusiastic: Voice(
        thread_opener="🚀 {title}! A thread you won't want to miss:",
        hook="🚀 {title}: this is exciting!",
        call_to_action="Are you as excited as I am? Tell me in the comments! 🔥",
        greeting="Hello and welcome! 🎉",
        sign_off="Onwards and upwards! 🚀",
        subject="🚀 {title}",
        bullet="🔥",
        contractions=True,
    ),
    Tone.thought_leadership: Voice(
        thread_opener="🧵 {title}. Here is what most people miss:",
        hook="{title}. Most people are looking at it the wrong way.",
        call_to_action="Where do you see this heading? I am curious to hear from leaders in the field.",
        greeting="Dear reader,",
        sign_off="Until next time, keep questioning the obvious.",
        subject="Perspective: {title}",
        bullet="→",
        contractions=False,
    ),
    Tone.educational: Voice(
        thread_opener="🧵 Learn {title} in one thread:",
        hook="Lesson of the day: {title}.",
        call_to_action="Which point was new to you? Ask your questions in the comments.",
        greeting="Welcome to this issue,",
        sign_off="Keep learning, see you in the next issue.",
        subject="Learn: {title}",
        bullet="📌",
        contractions=False,
    ),
}

_CONTRACTIONS = {
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "cannot": "can't",
    "will not": "won't",
    "it is": "it's",
    "that is": "that's",
    "we are": "we're",
    "you are": "you're",
    "they are": "they're",
    "i am": "I'm",
    "let us": "let's",
}
_EXPANSIONS = {short.lower(): long for long, short in _CONTRACTIONS.items() if long != "cannot"} | {"can't": "cannot"}


def _swap(text: str, table: dict[str, str]) -> str:
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in table) + r")\b", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        out = table[found.lower().replace("\u2019", "'")]
        return out[:1].upper() + out[1:] if found[:1].isupper() else out

    return pattern.sub(replace, text)


def voiced(text: str, tone: Tone) -> str:
    """`text` in the tone's contraction style: "do not" -> "don't" for casual voices, and back for formal ones."""
    return _swap(text, _CONTRACTIONS if VOICES[tone].contractions else _EXPANSIONS)
