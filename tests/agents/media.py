"""Spoken-word media the tests make: FFmpeg's Flite source speaks a text (CMU's slt voice, which PocketSphinx, also
CMU's, recognises word for word where espeak-ng's voice is mostly misheard), then FFmpeg encodes it as WAV, MP3 and
MP4 (H.264 video + AAC audio); and media FFmpeg cannot transcribe: an MP4 with no audio track, a corrupt MP3."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Spoken with a pause between the sentences.
SPOKEN = ("Welcome to the meeting.", "The weather today is sunny.", "Thank you for listening to our show.")
# Words PocketSphinx hears in SPOKEN (it writes no punctuation or capitals).
HEARD = ("welcome", "meeting", "weather", "today", "sunny", "listening", "show")


@dataclass(frozen=True)
class Media:
    wav: bytes
    mp3: bytes
    mp4: bytes
    silent_mp4: bytes  # video only, its index (moov) first: known to have no audio from its first bytes
    seconds: float


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120)


def make_media(folder: Path, sentences: tuple[str, ...] = SPOKEN) -> Media:
    inputs: list[str] = []
    for number, sentence in enumerate(sentences):
        script = folder / f"sentence{number}.txt"
        script.write_text(sentence)
        inputs += ["-f", "lavfi", "-i", f"flite=textfile={script}:voice=slt"]
        inputs += ["-f", "lavfi", "-t", "0.5", "-i", "anullsrc=r=8000:cl=mono"]  # a pause after each
    count = 2 * len(sentences)
    joined = "".join(f"[{i}:a]aresample=16000[a{i}];" for i in range(count))
    joined += "".join(f"[a{i}]" for i in range(count)) + f"concat=n={count}:v=0:a=1[out]"
    wav, mp3, mp4, silent = (folder / n for n in ("talk.wav", "talk.mp3", "talk.mp4", "silent.mp4"))
    _ffmpeg(*inputs, "-filter_complex", joined, "-map", "[out]", "-ar", "16000", "-ac", "1", str(wav))
    _ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-b:a", "32k", str(mp3))
    video = ["-f", "lavfi", "-i", "color=c=navy:s=64x64:r=5"]
    _ffmpeg(*video, "-i", str(wav), "-shortest", "-c:v", "libx264", "-c:a", "aac", "-b:a", "32k", str(mp4))
    _ffmpeg(*video, "-t", "2", "-c:v", "libx264", "-movflags", "+faststart", str(silent))
    seconds = float(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(wav)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return Media(wav.read_bytes(), mp3.read_bytes(), mp4.read_bytes(), silent.read_bytes(), seconds)


def corrupt_mp3() -> bytes:
    """Detected as MP3 by its first frame header; the rest is not MPEG audio."""
    return b"\xff\xfb\x90\x64" + bytes(range(256)) * 40
