"""Speech to text for maya's audio and video files, offline: FFmpeg decodes, PocketSphinx recognises.

A file is probed first (ffprobe: its audio stream and duration), so that a file with no audio, a
codec FFmpeg cannot decode or media longer than MAX_MEDIA_SECONDS fails the job at once with a
clear error (`AgentInputError`, never retried). It is then read CHUNK_SECONDS at a time: FFmpeg
seeks to the chunk and decodes only it to 16 kHz mono 16-bit PCM, PocketSphinx (whose English
model ships in its wheel) recognises each stretch of speech its voice activity detector finds in it,
and each comes back as a segment with its start and end times in the file. Memory stays that of
one chunk whatever the file's length.

Each chunk is decoded and recognised through `AgentContext.parse`: in a child process under the
parser's CPU and memory limits, killed (FFmpeg with it) when the job is cancelled or runs past the
agent's time limit, so that a long file stops within one chunk of its deadline.

When LLM_BASE_URL is set, each chunk (LLM_CHUNK_SECONDS of WAV) is sent to the OpenAI-compatible
`POST {LLM_BASE_URL}/audio/transcriptions` instead; a chunk it fails is recognised offline.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import wave
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from backplane.agents.base import AgentContext, AgentFile, AgentInputError
from backplane.agents.llm import LLMError, read_capped

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what PocketSphinx's English model was trained on
CHUNK_SECONDS = 30.0
LLM_CHUNK_SECONDS = 300.0  # 9.6 MB of 16 kHz mono WAV: under the usual 25 MB upload limit of such endpoints
# The longest audio per job, all files together: what gets through within maya's 600 s time limit. PocketSphinx
# recognises a minute of speech in about 20 s of one core (3x that on a loaded machine); an endpoint, much faster.
MAX_MEDIA_SECONDS = 20 * 60.0
MAX_MEDIA_SECONDS_LLM = 120 * 60.0
_TOOL_SECONDS = 120  # wall-clock cap on one ffprobe/ffmpeg run (the parser's CPU limit caps its CPU time)


@dataclass(frozen=True, slots=True)
class Probe:
    duration: float
    codec: str


def probe(path: str, subject: str) -> Probe:
    """The file's first audio stream and its duration; `AgentInputError` when FFmpeg cannot read it."""
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name"]
    result = _tool([*command, "-of", "json", path], subject, path)
    try:
        info = json.loads(result.stdout)
    except ValueError as exc:
        raise AgentInputError(f"{subject} could not be read as audio or video.") from exc
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise AgentInputError(f"{subject} has no audio track to transcribe.")
    codec = str(audio[0].get("codec_name") or "unknown")
    try:
        duration = float(info.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        raise AgentInputError(f"{subject}: the length of its audio ({codec}) cannot be read.") from None
    return Probe(duration=duration, codec=codec)


def pcm_chunk(path: str, start: float, seconds: float, subject: str) -> bytes:
    """`seconds` of the file's audio from `start`, as 16 kHz mono signed 16-bit little-endian PCM."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-threads", "1", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}"]
    command += ["-i", path, "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    return _tool(command, subject, path).stdout


def wav_chunk(path: str, start: float, seconds: float, subject: str) -> bytes:
    """The same chunk as a WAV file (what `/audio/transcriptions` takes)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm_chunk(path, start, seconds, subject))
    return out.getvalue()


def recognise_chunk(path: str, start: float, seconds: float, subject: str) -> list[dict[str, Any]]:
    """The chunk's speech as segments `{"start", "end", "text"}`, times in seconds from the file's start.

    PocketSphinx's voice activity detector cuts the chunk at pauses; each stretch of speech is recognised
    on its own and is one segment. Silence is never decoded (the recogniser would hear words in it)."""
    from pocketsphinx import Decoder, Segmenter  # in the child only: the worker never holds the model

    pcm = pcm_chunk(path, start, seconds, subject)
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    out = []
    for speech in Segmenter(sample_rate=SAMPLE_RATE).segment(io.BytesIO(pcm)):
        decoder.start_utt()
        decoder.process_raw(speech.pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        text = spoken_words(hypothesis.hypstr if hypothesis is not None else "")
        if text:
            out.append(
                {
                    "start": round(start + speech.start_time, 2),
                    "end": round(start + min(speech.end_time, seconds), 2),
                    "text": text,
                }
            )
    return out


def spoken_words(hypothesis: str) -> str:
    """The recogniser's words without its silence and noise units and pronunciation variants ("read(2)")."""
    words = (w.split("(", 1)[0] for w in hypothesis.split() if not w.startswith(("<", "[", "+")))
    return " ".join(w for w in words if w)


def _tool(command: list[str], subject: str, path: str) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(command, capture_output=True, timeout=_TOOL_SECONDS, check=False)
    except FileNotFoundError as exc:  # an operator's problem, not the customer's: retried once it is installed
        raise RuntimeError(f"{command[0]} is not installed (scripts/install-system-packages.sh)") from exc
    except subprocess.TimeoutExpired as exc:
        raise AgentInputError(f"{subject} took more than {_TOOL_SECONDS} s to decode; it is refused.") from exc
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        reason = detail[-1][:300] if detail else f"exit {result.returncode}"
        reason = reason.replace(path, subject)  # the customer knows their file's name, not our temporary path
        raise AgentInputError(f"{subject} could not be decoded: {reason}")
    return result


def mp4_without_audio(head: bytes) -> bool:
    """Whether an MP4's first bytes hold its whole index (`moov`, first in a "fast start" file) and no track
    in it is sound. False when the index is not within `head` (it is then probed when the job runs).

    Hand-written: the container's boxes are length-prefixed (ISO/IEC 14496-12), and the libraries that read
    them (mutagen, pymp4) want the whole file where this has only its first 64 KB; it reads box headers only.
    """
    moov = _box(head, 0, len(head), b"moov")
    if moov is None:
        return False
    handlers = []
    for trak in _boxes(head, *moov, b"trak"):
        mdia = _box(head, *trak, b"mdia")
        hdlr = _box(head, *mdia, b"hdlr") if mdia else None
        if hdlr is not None and hdlr[0] + 12 <= hdlr[1]:
            handlers.append(head[hdlr[0] + 8 : hdlr[0] + 12])  # after version, flags and pre_defined
    return b"soun" not in handlers


def _boxes(data: bytes, start: int, end: int, kind: bytes) -> list[tuple[int, int]]:
    """The (content start, end) of each complete `kind` box directly within data[start:end]."""
    found: list[tuple[int, int]] = []
    while start + 8 <= end:
        size, name = int.from_bytes(data[start : start + 4], "big"), data[start + 4 : start + 8]
        header = 8
        if size == 1 and start + 16 <= end:  # a 64-bit size follows the name
            size, header = int.from_bytes(data[start + 8 : start + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file: complete only if the file is all here
            return found
        if size < header or start + size > end:  # malformed, or cut off by the head
            return found
        if name == kind:
            found.append((start + header, start + size))
        start += size
    return found


def _box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    found = _boxes(data, start, end, kind)
    return found[0] if found else None


# -- in the agent (the worker's event loop) ----------------------------------------------------------------


@dataclass(slots=True)
class Transcript:
    text: str
    segments: list[dict[str, Any]]
    duration_seconds: float
    engine: str  # "pocketsphinx", "llm", or "llm+pocketsphinx" when some chunks fell back

    def as_output(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "duration_seconds": round(self.duration_seconds, 2),
            "engine": self.engine,
            "segments": self.segments,
        }


async def transcribe(ctx: AgentContext, media: list[tuple[AgentFile, str]]) -> Transcript:
    """The speech of `media` (each file with the path it was written to), chunk by chunk, reporting progress."""
    probes = [await ctx.parse(partial(probe, path, file.filename), subject=file.filename) for file, path in media]
    total = sum(p.duration for p in probes)
    use_llm = bool(ctx.settings.llm_base_url)
    longest = MAX_MEDIA_SECONDS_LLM if use_llm else MAX_MEDIA_SECONDS
    if total > longest:
        raise AgentInputError(
            f"The audio is {total / 60:.0f} minutes long; Maya transcribes at most {longest / 60:.0f} minutes "
            "per job. Split it, or send the transcript as text."
        )
    size = LLM_CHUNK_SECONDS if use_llm else CHUNK_SECONDS
    plan = [
        (file, path, start, p.duration)
        for (file, path), p in zip(media, probes, strict=True)
        for start in _starts(p, size)
    ]
    segments: list[dict[str, Any]] = []
    engines: set[str] = set()
    for number, (file, path, start, duration) in enumerate(plan, start=1):
        end = min(start + size, duration)
        found = await _llm_chunk(ctx, file, path, start, end) if use_llm else None
        if found is None:  # offline; an endpoint's 5-minute chunk in 30-second ones, each within the CPU limit
            found = []
            for offset in _starts(Probe(end - start, ""), CHUNK_SECONDS):
                call = partial(
                    recognise_chunk, path, start + offset, min(CHUNK_SECONDS, end - start - offset), file.filename
                )
                found += await ctx.parse(call, subject=file.filename)
            engines.add("pocketsphinx")
        else:
            engines.add("llm")
        segments += [{"file_id": file.id, **s} for s in found]
        await ctx.progress(0.8 * number / len(plan), f"{number} of {len(plan)} chunks transcribed")
    engine = "+".join(e for e in ("llm", "pocketsphinx") if e in engines) or "pocketsphinx"
    return Transcript(
        text=" ".join(s["text"] for s in segments), segments=segments, duration_seconds=total, engine=engine
    )


def _starts(found: Probe, size: float) -> list[float]:
    count = max(1, int(-(-found.duration // size)))
    return [index * size for index in range(count)]


async def _llm_chunk(
    ctx: AgentContext, file: AgentFile, path: str, start: float, end: float
) -> list[dict[str, Any]] | None:
    """The chunk [start, end) through `/audio/transcriptions`, or None (logged) when that fails: it is then
    recognised offline."""
    audio = await ctx.parse(partial(wav_chunk, path, start, end - start, file.filename), subject=file.filename)
    try:
        answer = await transcriptions(ctx, audio)
    except LLMError as exc:
        logger.warning("transcription of %s failed for job %s, recognising offline: %s", file.id, ctx.job_id, exc)
        return None
    out = []
    for segment in answer:
        out.append(
            {
                "start": round(min(start + segment["start"], end), 2),
                "end": round(min(start + segment["end"], end), 2),
                "text": segment["text"],
            }
        )
    return out


async def transcriptions(ctx: AgentContext, wav: bytes) -> list[dict[str, Any]]:
    """`POST {LLM_BASE_URL}/audio/transcriptions` (multipart: the WAV, the model, verbose_json with segment
    timestamps) -> segments `{"start", "end", "text"}` from the chunk's start. Raises `LLMError`."""
    settings = ctx.settings
    assert settings.llm_base_url is not None
    url = settings.llm_base_url.rstrip("/") + "/audio/transcriptions"
    headers = {"Accept-Encoding": "identity"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    data = {
        "model": settings.llm_transcription_model,
        "response_format": "verbose_json",
        "timestamp_granularities[]": "segment",
    }
    files = {"file": ("chunk.wav", wav, "audio/wav")}
    try:
        async with ctx.http.stream(
            "POST", url, data=data, files=files, headers=headers, timeout=settings.llm_timeout_seconds
        ) as response:
            if response.status_code != 200:
                raise LLMError(f"audio transcriptions answered {response.status_code}")
            raw = await read_capped(response, settings.llm_max_response_bytes)
    except httpx.HTTPError as exc:
        raise LLMError(f"audio transcriptions request failed: {type(exc).__name__}") from exc
    try:
        answer = json.loads(raw)
        text = answer["text"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LLMError("audio transcriptions answered without `text`") from exc
    if not isinstance(text, str):
        raise LLMError("audio transcriptions answered a `text` that is not a string")
    segments = answer.get("segments") if isinstance(answer, dict) else None
    out = []
    for segment in segments if isinstance(segments, list) else []:
        try:
            begin, end, words = float(segment["start"]), float(segment["end"]), str(segment["text"]).strip()
        except (KeyError, TypeError, ValueError) as exc:
            raise LLMError("audio transcriptions answered a segment without start, end and text") from exc
        if words:
            out.append({"start": begin, "end": max(begin, end), "text": words})
    if not out and text.strip():  # an endpoint that gives no segments: the chunk is one
        out.append({"start": 0.0, "end": LLM_CHUNK_SECONDS, "text": text.strip()})
    return out
