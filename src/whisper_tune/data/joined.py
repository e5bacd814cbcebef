"""Long recordings joined from short clips, with exact reference segments, for long-form evaluation.

Why: the long-form checks (the tuned model on recordings longer than Whisper's 30 s window,
decoded sequentially and chunked; and "no worse than base on general speech") need recordings
of a minute or more with time-aligned references, while most held-out sets -- the real-speech
guard, a corpus' test split -- are short clips. Joining clips with short pauses gives such
recordings, and each clip's place in it is an exact reference segment. A reference segment
marks the clip's speech (from its first to its last 10 ms frame within 40 dB of its loudest,
the rule ``data synth`` trims its clips and calls with), as a transcriber's SRT would, not the
clip's own leading and trailing silence (``clip_start``/``clip_end`` keep those); the audio is
written whole. No library writes the
manifest rows (``segments`` with ``start``/``end``/``text``) that ``evaluate --longform`` reads,
so this is done here; audio is read and written with the project's ``load_audio`` and soundfile.

``whisper-tune data join MANIFEST --out DIR [--seconds 60]`` writes ``DIR/audio/joined_NNN.wav``
and ``DIR/longform.jsonl``; a clip that cannot be read is a counted, logged skip naming it.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import load_audio
from whisper_tune.data.manifest import load_manifest
from whisper_tune.data.synth.channel import active_extent
from whisper_tune.errors import DataError

__all__ = ["JoinResult", "join_clips"]

log = logging.getLogger(__name__)

SR = 16000


@dataclass
class JoinResult:
    manifest: Path
    recordings: int
    clips: int
    seconds: float
    skipped: list[str] = field(default_factory=list)  # "id: reason" of clips that could not be read


def join_clips(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    seconds: float = 60.0,
    pause_s: tuple[float, float] = (0.4, 0.9),
    seed: int = 0,
    shuffle: bool = True,
) -> JoinResult:
    """Join the clips of ``manifest`` into recordings of at least ``seconds`` each.

    Clips are taken in a seeded shuffled order (``shuffle``) with a pause drawn from ``pause_s``
    after each; a recording closes once it reaches ``seconds``. A remainder shorter than that is
    appended to the last recording (no clip is dropped), or is a recording of its own when it is
    the only one. Each row's ``segments`` are the clips' exact spans and texts.
    """
    if seconds <= 0:
        raise DataError(f"--seconds must be > 0, got {seconds}")
    lo, hi = pause_s
    if not 0 <= lo <= hi:
        raise DataError(f"pause_s must be LOW,HIGH with 0 <= LOW <= HIGH, got {pause_s}")
    samples = load_manifest(str(manifest)).samples
    if not samples:
        raise DataError(f"{manifest}: no usable rows to join")
    order = list(range(len(samples)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    groups: list[list[tuple[np.ndarray, Any, int]]] = [[]]  # (audio, sample, pause samples after it)
    lengths = [0]  # samples per recording, pauses included: the exact length written
    skipped: list[str] = []
    for i in order:
        s = samples[i]
        try:
            audio = np.asarray(load_audio(s.audio), dtype=np.float32)
        except Exception as exc:  # unreadable audio: a counted skip, the rest is kept
            skipped.append(f"{s.id}: {exc}")
            log.warning("data join: skipped %s (%s)", s.id, exc)
            continue
        if lengths[-1] >= seconds * SR:
            groups.append([])
            lengths.append(0)
        pause = int(SR * rng.uniform(lo, hi))
        groups[-1].append((audio, s, pause))
        lengths[-1] += audio.size + pause
    if len(groups) > 1 and lengths[-1] < seconds * SR:
        groups[-2].extend(groups.pop())  # the short remainder joins the last full recording
    rows = [_write(out, k, group) for k, group in enumerate(groups) if group]
    if not rows:
        raise DataError(f"{manifest}: no clip could be read ({len(skipped)} skipped)")
    path = out / "longform.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    total = sum(float(r["duration"]) for r in rows)
    log.info(
        "data join: %d clips -> %d recordings (%.0f s) in %s",
        len(order) - len(skipped),
        len(rows),
        total,
        path,
    )
    return JoinResult(path, len(rows), len(order) - len(skipped), total, skipped)


def _write(out: Path, k: int, group: list[tuple[np.ndarray, Any, int]]) -> dict[str, Any]:
    import soundfile as sf

    pieces: list[np.ndarray] = []
    segments: list[dict[str, Any]] = []
    t = 0
    for audio, s, pause_samples in group:
        a, b = active_extent(audio, SR)
        if b <= a:  # digital silence: the clip's own extent
            a, b = 0, audio.size
        segments.append(
            {
                "start": round((t + a) / SR, 3),  # the speech, as a transcriber marks it
                "end": round((t + b) / SR, 3),
                "text": s.text.strip(),
                "id": s.id,
                "clip_start": round(t / SR, 3),  # the whole clip, its own silences included
                "clip_end": round((t + audio.size) / SR, 3),
            }
        )
        pause = np.zeros(pause_samples, dtype=np.float32)
        pieces += [audio, pause]
        t += audio.size + pause.size
    wav = out / "audio" / f"joined_{k:03d}.wav"
    sf.write(wav, np.concatenate(pieces), SR, subtype="PCM_16")
    return {
        "audio_filepath": str(wav.resolve()),
        "text": " ".join(seg["text"] for seg in segments),
        "duration": round(t / SR, 3),
        "segments": segments,
    }
