"""Read time-aligned transcripts (SRT, WebVTT) cue by cue, naming every cue that cannot be used.

Why: a bank's call transcripts come from vendors as subtitle files, and every vendor's files
have a few broken cues (a ``00:00:03,000 -> 00:00:04`` arrow, a cue without text, a truncated
last block). The parsers this relies on are all-or-nothing: ``srt.parse`` raises on the first
malformed cue (or, with ``ignore_errors``, drops it without saying where), and ``webvtt-py``
drops a cue whose timing line it cannot read without a word. So the file is split into its
blank-line separated blocks here (keeping their line numbers) and each block is handed to the
library on its own: a block the library refuses becomes a counted problem naming
``file:line`` and the cue number, and every other cue is kept. Time parsing and tag stripping
(``<v Agent>``, ``<b>``) stay the libraries' (``srt``, ``webvtt-py``). Files are decoded like
manifests (UTF-8, or UTF-16/32 by their byte-order mark; ``manifest_io.manifest_lines``).

SRT has no speaker syntax, so call-centre vendors (and ``data synth --calls``) prefix each cue
with a label: ``Agent: ...``, ``SPEAKER 1: ...``. A label is not speech, but a cue that merely
starts with "Note: ..." is; so labels are taken as speakers only when the whole file uses them
(``_speaker_labels``: at least 80 % of its cues carry one, from at most 4 distinct names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from whisper_tune.data.manifest_io import manifest_lines

__all__ = [
    "TRANSCRIPT_FIELDS",
    "TRANSCRIPT_SUFFIXES",
    "Cue",
    "CueProblem",
    "read_srt",
    "read_transcript",
    "read_vtt",
]

#: Manifest fields naming a long recording's transcript file (resolved like the audio path).
TRANSCRIPT_FIELDS: tuple[str, ...] = ("srt", "vtt", "subtitles")
TRANSCRIPT_SUFFIXES: dict[str, str] = {".srt": "srt", ".vtt": "vtt", ".webvtt": "vtt"}
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")  # SRT's <i>/<b>/<font> markup is not speech
_LABEL = re.compile(r"^\[?([A-Z][A-Za-z]*(?: [A-Za-z0-9]+)?)\]?:\s+(?=\S)")  # "Agent: ", "SPEAKER 1: "


@dataclass(frozen=True)
class Cue:
    """One time-aligned piece of transcript; ``origin`` (``file:line (cue N)``) names it in messages."""

    start: float
    end: float
    text: str
    origin: str
    speaker: str | None = None
    channel: int | None = None


@dataclass(frozen=True)
class CueProblem:
    """A cue (or line) that was not used: ``reason`` is a data report key."""

    origin: str
    reason: str
    message: str


def _blocks(path: Path, problems: list[CueProblem]) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each blank-line separated block of a text file."""

    def bad(i: int, message: str) -> None:
        problems.append(CueProblem(f"{path}:{i}", "malformed_cue", message))

    block: list[str] = []
    first = 0
    for i, line in manifest_lines(path, bad):
        if line.strip():
            if not block:
                first = i
            block.append(line.rstrip())
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def _short(lines: list[str]) -> str:
    text = " / ".join(lines[:3])
    return text if len(text) <= 80 else text[:77] + "..."


def read_srt(path: str | Path) -> tuple[list[Cue], list[CueProblem]]:
    """The usable cues of an SRT file, in file order, and one problem per block that is not a cue."""
    import srt

    p = Path(path)
    problems: list[CueProblem] = []
    cues: list[Cue] = []
    for n, (line, block) in enumerate(_blocks(p, problems), start=1):
        origin = f"{p}:{line} (cue {n})"
        try:
            parsed = list(srt.parse("\n".join(block) + "\n\n"))
        except (srt.SRTParseError, ValueError) as exc:
            detail = str(exc).split(" (unmatched", 1)[0]
            problems.append(
                CueProblem(origin, "malformed_cue", f"not an SRT cue ({detail}): {_short(block)!r}")
            )
            continue
        if not parsed:
            problems.append(CueProblem(origin, "malformed_cue", f"no SRT cue in: {_short(block)!r}"))
            continue
        for s in parsed:  # several when a vendor left out the blank line between cues
            where = f"{p}:{line} (cue {s.index if s.index is not None else n})"
            text = " ".join(_TAG.sub("", s.content).split())
            cues.append(Cue(s.start.total_seconds(), s.end.total_seconds(), text, where))
    return _speaker_labels(cues), problems


def _speaker_labels(cues: list[Cue]) -> list[Cue]:
    """Cues with a file-wide ``Name: `` prefix moved into ``speaker`` (see the module docstring)."""
    found = [_LABEL.match(c.text) for c in cues]
    names = {m.group(1) for m in found if m}
    if not cues or sum(m is not None for m in found) < 0.8 * len(cues) or len(names) > 4:
        return cues
    return [
        Cue(c.start, c.end, c.text[m.end() :], c.origin, speaker=m.group(1), channel=c.channel) if m else c
        for c, m in zip(cues, found, strict=True)
    ]


_VTT_NON_CUES = ("NOTE", "STYLE", "REGION")


def read_vtt(path: str | Path) -> tuple[list[Cue], list[CueProblem]]:
    """The usable cues of a WebVTT file (``<v Name>`` becomes ``speaker``) and the problems."""
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    p = Path(path)
    problems: list[CueProblem] = []
    cues: list[Cue] = []
    blocks = list(_blocks(p, problems))
    if not blocks or not blocks[0][1][0].lstrip("\ufeff").startswith("WEBVTT"):
        problems.append(CueProblem(f"{p}:1", "malformed_cue", "not a WebVTT file (no 'WEBVTT' header)"))
        return cues, problems
    n = 0
    for line, block in blocks[1:]:
        if block[0].split(" ", 1)[0] in _VTT_NON_CUES:
            continue
        n += 1
        origin = f"{p}:{line} (cue {n})"
        if not any("-->" in x for x in block[:2]):
            problems.append(
                CueProblem(origin, "malformed_cue", f"no 'start --> end' timing line: {_short(block)!r}")
            )
            continue
        try:
            parsed = list(webvtt.from_string("WEBVTT\n\n" + "\n".join(block) + "\n").captions)
        except (MalformedCaptionError, MalformedFileError, ValueError) as exc:
            problems.append(
                CueProblem(origin, "malformed_cue", f"not a WebVTT cue ({exc}): {_short(block)!r}")
            )
            continue
        if len(parsed) < sum("-->" in x for x in block):  # webvtt-py drops what it cannot read, silently
            problems.append(
                CueProblem(origin, "malformed_cue", f"unreadable WebVTT timing line: {_short(block)!r}")
            )
        for c in parsed:
            text = " ".join(c.text.split())
            start, end = c.start_time.in_milliseconds() / 1000.0, c.end_time.in_milliseconds() / 1000.0
            cues.append(Cue(start, end, text, origin, speaker=c.voice or None))
    return cues, problems


def read_transcript(path: str | Path) -> tuple[list[Cue], list[CueProblem]]:
    """SRT or WebVTT by the file's suffix; a missing or unknown file is one problem, not a crash."""
    p = Path(path)
    kind = TRANSCRIPT_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        return [], [CueProblem(str(p), "malformed_cue", "transcript is not .srt or .vtt")]
    try:
        return read_srt(p) if kind == "srt" else read_vtt(p)
    except OSError as exc:
        return [], [CueProblem(str(p), "missing_file", f"transcript file cannot be read ({exc.strerror})")]
