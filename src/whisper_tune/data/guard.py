"""The real-speech guard set: real human recordings from Debian packages, with checked transcripts.

Why: a model tuned on synthetic (TTS) call-centre speech can get better on its own test set
and worse on real people; the demo's tuned tiny.en more than doubled its WER on real read
speech. Only real human speech shows that, and it must be at hand offline, on every
machine, with transcripts one can trust. Debian ships such recordings: Asterisk's telephone
prompts (Allison Smith), codec2's test sentences and radio calls (several speakers) and
ALSA's spoken channel names. ``guard_sources.json`` pins each clip (package, file,
sha256, transcript, speaker, content kind) -- transcripts only, no audio -- and
:func:`build_guard` makes the set at set-up time from the installed packages: 16 kHz mono
WAV, a JSONL manifest in the project's format and a datasheet. A changed package (sha256
mismatch) is an error, not a silently different guard. Users can point ``data.guard`` at
their own general-speech manifest instead (:func:`resolve_guard`, :func:`check_guard_manifest`).

The spec's types and loader live in :mod:`whisper_tune.data.guard_spec`, the datasheet in
:mod:`whisper_tune.data.guard_datasheet`; this module re-exports the public names.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from whisper_tune.data.audio import SAMPLE_RATE, AudioError, decode_audio
from whisper_tune.data.features import file_sha256
from whisper_tune.data.guard_datasheet import write_datasheet
from whisper_tune.data.guard_spec import (
    SPEC_FILE,
    GuardClip,
    GuardResult,
    GuardSource,
    GuardSpec,
    RawFormat,
    load_spec,
    select_clips,
)
from whisper_tune.data.manifest import load_manifest
from whisper_tune.errors import DataError

__all__ = [
    "BUILTIN",
    "MANIFEST_NAME",
    "NONE_VALUES",
    "SPEC_FILE",
    "GuardClip",
    "GuardResult",
    "GuardSource",
    "GuardSourceError",
    "GuardSpec",
    "RawFormat",
    "build_guard",
    "check_guard_manifest",
    "load_spec",
    "resolve_guard",
    "select_clips",
]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
AUDIO_DIR = "audio"
#: ``data.guard`` value that means "the built-in real-speech guard".
BUILTIN = "builtin"
#: ``data.guard`` values that turn the guard off.
NONE_VALUES = ("none", "off", "false", "")
_INSTALL_HINT = (
    "`make` installs them (scripts/system-deps.sh, as root with apt-get); or point data.guard at "
    "your own general-speech manifest, or set data.guard: none"
)


class GuardSourceError(DataError):
    """The guard's source recordings are missing or not the verified ones."""


def _check_sources(
    spec: GuardSpec, clips: list[GuardClip], lenient: bool
) -> tuple[list[GuardClip], list[dict[str, str]]]:
    """Clips whose file is there with the pinned sha256; the rest are errors (or dropped if lenient)."""
    missing: dict[str, list[Path]] = defaultdict(list)
    changed: list[str] = []
    ok: list[GuardClip] = []
    dropped: list[dict[str, str]] = []
    for c in clips:
        path = spec.path_of(c)
        src = spec.sources[c.source]
        if not path.is_file():
            missing[c.source].append(path)
            dropped.append(
                {"id": c.id, "reason": "missing_package", "message": f"{path} not found ({src.package})"}
            )
            continue
        got = file_sha256(path)
        if got != c.sha256:
            msg = (
                f"{path}: sha256 {got[:12]}... is not the verified {c.sha256[:12]}... "
                f"({src.package} {src.package_version})"
            )
            changed.append(msg)
            dropped.append({"id": c.id, "reason": "changed_file", "message": msg})
            continue
        ok.append(c)
    if lenient:
        for d in dropped:
            log.warning("guard: left out %s: %s", d["id"], d["message"])
        return ok, dropped
    if missing:
        pkgs = sorted({spec.sources[s].package for s in missing})
        detail = "; ".join(
            f"{spec.sources[s].package}: {len(paths)} file(s) missing, e.g. {paths[0]}"
            for s, paths in missing.items()
        )
        raise GuardSourceError(
            f"data.guard: the real-speech guard needs the Debian package(s) {', '.join(pkgs)} ({detail}). "
            f"Install them with `apt-get install {' '.join(pkgs)}`; {_INSTALL_HINT}"
        )
    if changed:
        raise GuardSourceError(
            f"data.guard: {len(changed)} guard recording(s) differ from the verified ones, so their pinned "
            f"transcripts are no longer checked: {changed[0]}"
            + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")
            + ". Re-verify the transcripts and update guard_sources.json, or build with --lenient to leave "
            "changed clips out"
        )
    return ok, dropped


def _read(spec: GuardSpec, clip: GuardClip) -> tuple[np.ndarray, int, float]:
    """16 kHz mono float32 samples, the original sample rate and the duration in seconds."""
    path = spec.path_of(clip)
    raw = spec.sources[clip.source].raw
    if raw is None or path.suffix.lower() != ".raw":
        audio, info = decode_audio(path)
        return audio, info.orig_sr, info.duration
    import soundfile as sf
    import soxr

    try:
        data, _ = sf.read(
            str(path),
            samplerate=raw.samplerate,
            channels=raw.channels,
            subtype=raw.subtype,
            endian=raw.endian,
            format="RAW",
            dtype="float32",
            always_2d=True,
        )
    except Exception as exc:  # soundfile raises several types
        raise AudioError(f"{path}: cannot decode raw audio ({exc})", "unreadable_audio", str(path)) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio has no samples", "empty_audio", str(path))
    mono = data.mean(axis=1, dtype=np.float32)
    duration = data.shape[0] / float(raw.samplerate)
    if raw.samplerate != SAMPLE_RATE:
        mono = soxr.resample(mono, raw.samplerate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32), raw.samplerate, duration


def _prepare_out(out: Path) -> None:
    """``out`` must be new, empty or an earlier guard build (which is replaced)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "datasheet.json").is_file():
            raise DataError(
                f"{out}: folder is not empty and holds no guard build (datasheet.json); use a new folder"
            )
        shutil.rmtree(out / AUDIO_DIR, ignore_errors=True)
        for name in (MANIFEST_NAME, "datasheet.json", "datasheet.md"):
            (out / name).unlink(missing_ok=True)
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)


def build_guard(
    out_dir: str | Path,
    max_clips: int | None = None,
    *,
    spec: GuardSpec | None = None,
    lenient: bool = False,
    max_duration_s: float = 30.0,
) -> Path:
    """Build the guard set into ``out_dir`` and return the path of its JSONL manifest.

    Writes ``audio/*.wav`` (16 kHz mono PCM), ``manifest.jsonl`` (``audio_filepath``,
    ``text``, ``duration``, ``id``, ``speaker``, ``source``, ``kind``, ``orig_sr``) and
    ``datasheet.md``/``datasheet.json``. Missing packages or changed files raise
    :class:`GuardSourceError` naming the package, unless ``lenient`` (then they are left
    out and listed in the datasheet). Clips longer than ``max_duration_s`` are rejected
    with a message (their transcripts cannot be cut), like over-long training clips.
    """
    import soundfile as sf

    spec = spec if spec is not None else load_spec()
    out = Path(out_dir)
    picked = select_clips(spec.clips, max_clips)
    usable, dropped = _check_sources(spec, picked, lenient)
    _prepare_out(out)
    rows: list[dict[str, Any]] = []
    for c in usable:
        try:
            audio, orig_sr, duration = _read(spec, c)
        except AudioError as exc:
            log.warning("guard: left out %s: %s", c.id, exc)
            dropped.append({"id": c.id, "reason": exc.reason, "message": str(exc)})
            continue
        if duration > max_duration_s:
            msg = (
                f"{spec.path_of(c)}: {duration:.1f} s is longer than {max_duration_s:g} s; rejected "
                "(Whisper would truncate it and its transcript cannot be cut)"
            )
            log.warning("guard: %s", msg)
            dropped.append({"id": c.id, "reason": "too_long", "message": msg})
            continue
        rel = f"{AUDIO_DIR}/{c.id.replace('/', '__')}.wav"
        sf.write(str(out / rel), np.clip(audio, -1.0, 32767 / 32768), SAMPLE_RATE, subtype="PCM_16")
        rows.append(
            {
                "audio_filepath": rel,
                "text": c.text,
                "duration": round(len(audio) / SAMPLE_RATE, 3),
                "id": c.id,
                "speaker": c.speaker,
                "source": c.source,
                "kind": c.kind,
                "orig_sr": orig_sr,
            }
        )
    if not rows:
        raise DataError(
            f"{out}: no guard clip could be built ({len(dropped)} left out: {dropped[0]['message']})"
        )
    manifest = out / MANIFEST_NAME
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = GuardResult(out, manifest, rows, dropped)
    write_datasheet(result, spec, max_clips=max_clips, lenient=lenient)
    log.info("guard: %d clips, %.1f s -> %s", len(rows), result.seconds, manifest)
    return manifest


def check_guard_manifest(path: str | Path, *, max_duration_s: float = 30.0) -> Path:
    """A user's guard manifest, checked: exists, has usable rows; long clips are counted out.

    Raises :class:`DataError` naming the file when it is missing, empty or has no usable
    row. Rows whose ``duration`` says they are over ``max_duration_s`` are rejected with a
    warning (training and evaluation reject them the same way, by measuring).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data.guard: guard manifest {p} not found")
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"data.guard: guard manifest {p} is empty")
    res = load_manifest(p)
    too_long = [s for s in res.samples if s.duration is not None and s.duration > max_duration_s]
    for s in too_long:
        log.warning(
            "data.guard: %s: %.1f s is longer than %g s; rejected", s.origin, s.duration, max_duration_s
        )
    if len(res.samples) == len(too_long):
        why = f"; first problem: {res.skipped[0]}" if res.skipped else ""
        raise DataError(
            f"data.guard: guard manifest {p} has no usable rows ({len(res.skipped)} skipped{why})"
        )
    if res.skipped:
        log.warning("data.guard: %s: %d row(s) skipped, first: %s", p, len(res.skipped), res.skipped[0])
    return p


def _built_ok(out: Path, spec: GuardSpec, max_clips: int | None) -> bool:
    try:
        sheet = json.loads((out / "datasheet.json").read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in (out / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):
        return False
    return (
        sheet.get("spec_fingerprint") == spec.fingerprint()
        and sheet.get("max_clips") == max_clips
        and not sheet.get("dropped")
        and bool(rows)
        and all((out / r["audio_filepath"]).is_file() for r in rows)
    )


def resolve_guard(
    value: str | Path | None,
    *,
    cache_dir: str | Path | None = None,
    max_clips: int | None = None,
    spec: GuardSpec | None = None,
) -> Path | None:
    """What ``data.guard`` names, as a manifest path (or ``None`` for no guard).

    ``none``/``off``/empty -> ``None``; ``builtin`` -> the built-in guard, built once into
    ``cache_dir/<spec fingerprint>[-N]`` and reused while the spec and files are unchanged;
    anything else is the path of the user's own general-speech manifest, checked by
    :func:`check_guard_manifest`.
    """
    if value is None or str(value).strip().lower() in NONE_VALUES:
        return None
    if str(value).strip().lower() != BUILTIN:
        return check_guard_manifest(value)
    if cache_dir is None:
        raise DataError("data.guard: builtin needs a cache folder to build the guard into")
    spec = spec if spec is not None else load_spec()
    out = Path(cache_dir) / (spec.fingerprint() + (f"-{max_clips}" if max_clips else ""))
    if _built_ok(out, spec, max_clips):
        return out / MANIFEST_NAME
    # build beside it and move into place, so concurrent runs never read a half-built guard
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build_guard(tmp, max_clips, spec=spec)
    shutil.rmtree(out, ignore_errors=True)
    try:
        os.replace(tmp, out)
    except OSError:  # another process moved its build in first: same spec, same files
        shutil.rmtree(tmp, ignore_errors=True)
    return out / MANIFEST_NAME
