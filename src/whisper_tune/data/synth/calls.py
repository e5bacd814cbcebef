"""Synthetic two-channel banking calls: minutes of audio with time-aligned, speaker-labelled turns.

Why: a bank's data is whole calls (minutes long, 8 kHz, agent and customer on separate
channels) with vendor transcripts per segment, and long-form decoding, timestamp accuracy
and stereo handling can only be tested offline on such material. ``synthesize_calls``
speaks the script of ``dialogue`` with two voices (agent: Piper; customer: another Piper
voice or espeak-ng), puts agent turns on the left channel and customer turns on the right,
with pauses between turns and never two turns at once (overlap-free), passes each channel
through the telephone channel of ``channel`` with faint line noise, and writes:

* ``OUT/audio/call_NNNNNN.{wav,flac}``: the stereo call (``sample_rate``, default 8 kHz);
  ``OUT/audio/call_NNNNNN.mix.{wav,flac}``: its mono mix (what a mono recorder hears);
* ``OUT/srt/call_NNNNNN.srt``: one cue per turn, text prefixed ``Agent:``/``Customer:``;
* ``OUT/segments.jsonl``: one line per turn (``audio_filepath`` = the stereo file, ``start``,
  ``end``, ``text``, ``speaker``, ``channel`` 0 = left = agent, 1 = right = customer, ...);
* ``OUT/longform.jsonl``: one line per call for long-form evaluation (``audio_filepath`` =
  the stereo call, which evaluation decodes as its mono mix and whose channels say who speaks
  when, as a bank's own recordings would; ``text`` = every turn in time order, ``duration``, ``segments``);
* ``OUT/longform_channels.jsonl``: one line per call and channel, the two-channel way to
  evaluate (``audio_filepath`` = the stereo file, ``channel`` = its index, that speaker's turns
  as ``text`` and ``segments``): each side decoded alone, so no segment can join two speakers;
* ``OUT/calls.json``: what was made (calls, durations, voices, seed).

Paths in the manifests are relative to ``OUT``. Determinism: the script and every choice
come from ``random.Random(f"call:{seed}:{index}")``, Piper's in-graph noise is reseeded per
call, and a call's length is decided from its own rendered audio, so a seed gives the same
calls whatever the number of workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing as mp
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from whisper_tune.data.synth import channel as ch
from whisper_tune.data.synth import corpus as _corpus
from whisper_tune.data.synth.dialogue import AGENT, script
from whisper_tune.data.synth.tts import SR, Speaker, available_engines, espeak_variants, espeak_voices
from whisper_tune.errors import UserError

__all__ = ["CallsConfig", "CallsInfo", "Turn", "render_call", "synthesize_calls", "write_srt", "srt_time"]

_LOG = logging.getLogger(__name__)
_OUTPUTS = ("audio", "srt", "segments.jsonl", "longform.jsonl", "calls.json")
CHANNEL_OF = {AGENT: 0, "customer": 1}  # 0 = left, 1 = right


@dataclass
class CallsConfig:
    """Options of ``whisper-tune data synth --calls N``."""

    out: str
    calls: int = 2
    seed: int = 0
    minutes: tuple[float, float] = (1.0, 5.0)  # each call's target length is drawn from this range
    sample_rate: int = 8000  # telephone calls are 8 kHz; 16000 keeps the wideband rate
    audio_format: str = "wav"  # wav | flac
    pause_s: tuple[float, float] = (0.3, 1.4)  # silence between turns
    line_snr_db: tuple[float, float] = (28.0, 40.0)  # faint line noise per channel
    workers: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise UserError(f"--calls must be >= 1, got {self.calls}")
        lo, hi = self.minutes
        if not 0 < lo <= hi or hi > 60:
            raise UserError(f"--call-minutes must be LOW,HIGH with 0 < LOW <= HIGH <= 60, got {lo},{hi}")
        if self.sample_rate not in (8000, 16000):
            raise UserError(f"--call-sample-rate must be 8000 or 16000, got {self.sample_rate}")
        if self.audio_format not in ("wav", "flac"):
            raise UserError(f"--call-format must be wav or flac, got {self.audio_format!r}")
        if not 0 <= self.pause_s[0] <= self.pause_s[1]:
            raise UserError(f"pause_s must be LOW,HIGH with 0 <= LOW <= HIGH, got {self.pause_s}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--workers must be >= 1, got {self.workers}")


@dataclass
class Turn:
    """One rendered turn with its place in the call."""

    speaker: str
    voice: str
    start: float
    end: float
    text: str
    kind: str
    intent: str = ""

    @property
    def channel(self) -> int:
        return CHANNEL_OF[self.speaker]


@dataclass
class CallsInfo:
    """What :func:`synthesize_calls` wrote."""

    out_dir: Path
    segments: Path
    longform: Path
    calls: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def hours(self) -> float:
        return sum(c["duration"] for c in self.calls) / 3600.0


def _voices(rng: random.Random, engines: dict[str, bool]) -> tuple[Speaker, Speaker]:
    """(agent, customer): two clearly different voices."""
    piper = engines.get("piper", False)
    espeak = engines.get("espeak", False) and bool(espeak_voices())

    def esp() -> Speaker:
        variants = espeak_variants()
        return Speaker(
            "espeak",
            rng.choice(espeak_voices()),
            variant=rng.choice(variants) if variants else "",
            speed=rng.randrange(145, 176, 5),
            pitch=rng.randrange(30, 71, 5),
        )

    if piper:
        warp = rng.choice([0.95, 1.0, 1.05])
        agent = Speaker("piper", "joe", length_scale=rng.choice([0.95, 1.05]), warp=warp)
        if espeak and rng.random() < 0.5:
            return agent, esp()
        other = rng.choice([w for w in (0.88, 0.92, 1.1, 1.14) if abs(w - warp) >= 0.08])
        return agent, Speaker(
            "piper", "joe", length_scale=rng.choice([0.9, 1.0, 1.1]), noise_scale=0.8, warp=other
        )
    agent = esp()
    for _ in range(20):
        customer = esp()
        if customer.voice_name != agent.voice_name:
            return agent, customer
    return agent, customer


def render_call(index: int, cfg: CallsConfig, engines: dict[str, bool]) -> tuple[np.ndarray, list[Turn]]:
    """Speak one call; returns (stereo float32 ``[n, 2]`` at 16 kHz, turns in time order)."""
    rng = random.Random(f"call:{cfg.seed}:{index}")
    piper = _corpus._ENGINES.get("piper")
    if piper is not None:
        piper.reseed(cfg.seed * 1_000_003 + 700_001 + index)
    target = rng.uniform(*cfg.minutes) * 60.0
    agent, customer = _voices(rng, engines)
    voices = {AGENT: agent, "customer": customer}
    tracks: dict[str, list[tuple[int, np.ndarray]]] = {AGENT: [], "customer": []}
    turns: list[Turn] = []
    t = round(rng.uniform(0.3, 0.8), 2)
    gen = script(rng, n_verify=rng.choice([2, 3]))
    line, can_close = next(gen)
    closing_estimate = 6.0  # "no, that's all" and the goodbye, with pauses
    while True:
        audio = ch.trim_and_pad(_corpus._speak(line.spoken, voices[line.speaker]), lead_s=0.0, trail_s=0.0)
        start = int(round(t * SR))
        tracks[line.speaker].append((start, audio))
        end = (start + len(audio)) / SR
        turns.append(
            Turn(line.speaker, voices[line.speaker].id, start / SR, end, line.text, line.kind, line.intent)
        )
        t = end + rng.uniform(*cfg.pause_s)
        try:
            line, can_close = gen.send(can_close and t + closing_estimate >= target)
        except StopIteration:
            break
    n = int(round((t + 0.5) * SR))
    stereo = np.zeros((n, 2), dtype=np.float32)
    nrng = np.random.default_rng([cfg.seed, index, 17])
    for speaker, parts in tracks.items():
        k = CHANNEL_OF[speaker]
        for start, audio in parts:
            stereo[start : start + len(audio), k] += audio
        track = ch.set_peak_dbfs(stereo[:, k], -6.0)
        noisy = ch.mix_at_snr(track, ch.make_noise("pink", n, nrng), float(nrng.uniform(*cfg.line_snr_db)))
        phone = ch.telephone(noisy)[:n]  # the 8 kHz round trip can add a sample
        phone = np.pad(phone, (0, n - len(phone)))
        stereo[:, k] = ch.set_peak_dbfs(phone, float(nrng.uniform(-9.0, -3.0)))
    return stereo, turns


def srt_time(seconds: float) -> str:
    """``HH:MM:SS,mmm`` (SRT's time format)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def write_srt(turns: list[Turn], path: Path) -> None:
    """One cue per turn, numbered from 1, text prefixed with the speaker (``Agent: ...``)."""
    cues = [
        f"{i}\n{srt_time(tr.start)} --> {srt_time(tr.end)}\n{tr.speaker.capitalize()}: {tr.text}\n"
        for i, tr in enumerate(turns, start=1)
    ]
    path.write_text("\n".join(cues), encoding="utf-8")


def _render_and_write(index: int, cfg: CallsConfig, engines: dict[str, bool]) -> dict[str, Any]:
    t0 = time.perf_counter()
    cid = f"call_{index:06d}"
    try:
        stereo, turns = render_call(index, cfg, engines)
    except Exception as exc:  # one failed call is a counted, named skip, never a lost set
        return {"id": cid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out = Path(cfg.out)
    ext = cfg.audio_format
    if cfg.sample_rate != SR:
        stereo = soxr.resample(stereo, SR, cfg.sample_rate, quality="HQ").astype(np.float32)
    mix = stereo.mean(axis=1)
    rel, rel_mix = f"audio/{cid}.{ext}", f"audio/{cid}.mix.{ext}"
    sf.write(str(out / rel), ch.to_pcm16(stereo), cfg.sample_rate, subtype="PCM_16")
    sf.write(str(out / rel_mix), ch.to_pcm16(mix), cfg.sample_rate, subtype="PCM_16")
    write_srt(turns, out / "srt" / f"{cid}.srt")
    return {
        "id": cid,
        "ok": True,
        "audio": rel,
        "mix": rel_mix,
        "srt": f"srt/{cid}.srt",
        "duration": round(len(mix) / cfg.sample_rate, 3),
        "turns": [tr.__dict__ | {"channel": tr.channel} for tr in turns],
        "render_s": round(time.perf_counter() - t0, 2),
    }


def _init(engines: dict[str, bool]) -> None:
    _corpus._init_worker(engines)


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    present = [n for n in _OUTPUTS if (out / n).exists()]
    if present and not overwrite:
        raise UserError(f"--out {out} already holds calls ({', '.join(present)}); pass --overwrite")
    for name in present:
        p = out / name
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        else:
            p.unlink()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "srt").mkdir(parents=True, exist_ok=True)


def _r(x: float) -> float:
    return round(float(x), 3)


def _write_manifests(out: Path, calls: list[dict[str, Any]], cfg: CallsConfig) -> tuple[Path, Path]:
    seg_path, lf_path = out / "segments.jsonl", out / "longform.jsonl"
    with seg_path.open("w", encoding="utf-8") as seg, lf_path.open("w", encoding="utf-8") as lf:
        for c in calls:
            for k, tr in enumerate(c["turns"]):
                row = {
                    "audio_filepath": c["audio"],
                    "start": _r(tr["start"]),
                    "end": _r(tr["end"]),
                    "text": tr["text"],
                    "speaker": tr["speaker"],
                    "channel": tr["channel"],
                    "call_id": c["id"],
                    "turn": k,
                    "kind": tr["kind"],
                    "voice": tr["voice"],
                }
                seg.write(json.dumps(row, ensure_ascii=False) + "\n")
            row = {
                "audio_filepath": c["audio"],
                "text": " ".join(tr["text"] for tr in c["turns"]),
                "duration": c["duration"],
                "call_id": c["id"],
                "domain": "banking_call",
                "channel": "phone" if cfg.sample_rate == 8000 else "wideband",
                "segments": [
                    {
                        "start": _r(tr["start"]),
                        "end": _r(tr["end"]),
                        "text": tr["text"],
                        "speaker": tr["speaker"],
                    }
                    for tr in c["turns"]
                ],
            }
            lf.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "longform_channels.jsonl").open("w", encoding="utf-8") as lc:
        for c in calls:
            for ch in sorted({int(tr["channel"]) for tr in c["turns"]}):
                mine = [tr for tr in c["turns"] if int(tr["channel"]) == ch]
                row = {
                    "audio_filepath": c["audio"],  # the stereo file; ``channel`` picks one side
                    "channel": ch,
                    "speaker": mine[0]["speaker"],
                    "text": " ".join(tr["text"] for tr in mine),
                    "duration": c["duration"],
                    "call_id": c["id"],
                    "domain": "banking_call",
                    "line": "phone" if cfg.sample_rate == 8000 else "wideband",
                    "segments": [
                        {"start": _r(tr["start"]), "end": _r(tr["end"]), "text": tr["text"]} for tr in mine
                    ],
                }
                lc.write(json.dumps(row, ensure_ascii=False) + "\n")
    return seg_path, lf_path


def synthesize_calls(cfg: CallsConfig) -> CallsInfo:
    """Make ``cfg.calls`` calls into ``cfg.out`` (layout in the module docstring)."""
    t0 = time.perf_counter()
    engines, why = available_engines()
    if not any(engines.values()):
        raise UserError("no TTS engine is usable: " + "; ".join(why.values()))
    out = Path(cfg.out)
    _prepare_out(out, cfg.overwrite)
    workers = min(cfg.workers or os.cpu_count() or 1, cfg.calls)
    _LOG.info("synthesizing %d call(s) with %d worker(s) into %s", cfg.calls, workers, out)
    results: list[dict[str, Any]] = []
    if workers <= 1:
        _init(engines)
        results = [_render_and_write(i, cfg, engines) for i in range(cfg.calls)]
    else:
        ctx = mp.get_context("spawn")  # no inherited onnxruntime/torch threads
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(engines,)) as ex:
            futs = {ex.submit(_render_and_write, i, cfg, engines): i for i in range(cfg.calls)}
            for f in cf.as_completed(futs):
                try:
                    results.append(f.result())
                except Exception as exc:  # a worker died: count its call
                    results.append({"id": f"call_{futs[f]:06d}", "ok": False, "error": str(exc)})
    results.sort(key=lambda r: r["id"])
    good = [r for r in results if r["ok"]]
    failed = [f"{r['id']}: {r['error']}" for r in results if not r["ok"]]
    for msg in failed:
        _LOG.warning("call skipped: %s", msg)
    if not good:
        raise UserError(f"no call could be synthesized; first error: {failed[0]}")
    seg_path, lf_path = _write_manifests(out, good, cfg)
    made = [
        {k: r[k] for k in ("id", "audio", "mix", "srt", "duration", "render_s")}
        | {"turns": len(r["turns"]), "voices": sorted({t["voice"] for t in r["turns"]})}
        for r in good
    ]
    summary = {
        "seed": cfg.seed,
        "sample_rate": cfg.sample_rate,
        "minutes": list(cfg.minutes),
        "engines": engines,
        "calls": made,
        "failed": failed,
    }
    (out / "calls.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    info = CallsInfo(out, seg_path, lf_path, made, failed, time.perf_counter() - t0)
    _LOG.info("wrote %d call(s), %.1f min, in %.1f s", len(good), info.hours * 60, info.wall_s)
    return info
