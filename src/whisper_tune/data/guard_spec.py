"""The guard set's types and its pinned spec (``guard_sources.json``): sources, clips, selection.

Why a separate module: the spec is data that several places read -- the builder
(:mod:`whisper_tune.data.guard`), the datasheet, the tests that check the bundled file is
consistent -- and each clip is pinned by package, file, sha256 and checked transcript, so
loading it must reject a malformed entry with the file and field named.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from whisper_tune.errors import DataError

__all__ = [
    "SPEC_FILE",
    "GuardClip",
    "GuardResult",
    "GuardSource",
    "GuardSpec",
    "RawFormat",
    "load_spec",
    "select_clips",
]

SPEC_FILE = Path(__file__).with_name("guard_sources.json")


@dataclass(frozen=True)
class RawFormat:
    """How to read a headerless (``.raw``) file."""

    samplerate: int
    channels: int = 1
    subtype: str = "PCM_16"
    endian: str = "LITTLE"


@dataclass(frozen=True)
class GuardSource:
    """One package that ships recordings, and what is known about them."""

    name: str
    package: str  # the Debian package that installs the files
    package_version: str  # the version whose files were hashed and checked
    root: str  # folder the clip files are in
    licence: str
    attribution: str
    transcripts: str  # where the transcripts come from
    raw: RawFormat | None = None  # how this source's ``.raw`` files are read


@dataclass(frozen=True)
class GuardClip:
    """One pinned recording with its checked transcript."""

    id: str
    source: str
    file: str  # relative to the source's root
    sha256: str
    text: str
    speaker: str
    kind: str  # content type: ivr_prompt, digits, spelling, read_sentence, ...
    transcript_origin: str = "package"  # package | published | checked


@dataclass(frozen=True)
class GuardSpec:
    """Sources and clips of a guard set (``guard_sources.json`` or one made for a test)."""

    sources: dict[str, GuardSource]
    clips: tuple[GuardClip, ...]
    verification: str = ""
    version: int = 1

    def fingerprint(self) -> str:
        """Changes whenever a source, clip, transcript or hash changes."""
        blob = json.dumps(_spec_to_json(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def path_of(self, clip: GuardClip) -> Path:
        return Path(self.sources[clip.source].root) / clip.file


@dataclass
class GuardResult:
    """What :func:`build_guard` wrote (also in ``datasheet.json``)."""

    out_dir: Path
    manifest: Path
    rows: list[dict[str, Any]]
    dropped: list[dict[str, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return float(sum(r["duration"] for r in self.rows))


def _spec_to_json(spec: GuardSpec) -> dict[str, Any]:
    def plain(obj: Any) -> Any:
        return (
            {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
            if hasattr(obj, "__dataclass_fields__")
            else obj
        )

    return {
        "version": spec.version,
        "verification": spec.verification,
        "sources": {k: {f: v for f, v in plain(s).items() if f != "name"} for k, s in spec.sources.items()},
        "clips": [plain(c) for c in spec.clips],
    }


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise DataError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise DataError(f"{where}: {exc}") from exc


def load_spec(path: str | Path | None = None) -> GuardSpec:
    """Read and check a guard spec (default: the bundled ``guard_sources.json``)."""
    p = Path(path) if path is not None else SPEC_FILE
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{p}: guard spec not found") from exc
    except ValueError as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        raise DataError(f"{p}: needs an object with 'sources' and 'clips'")
    sources: dict[str, GuardSource] = {}
    for name, s in data["sources"].items():
        s = dict(s) if isinstance(s, dict) else s
        if isinstance(s, dict) and s.get("raw") is not None:
            s["raw"] = _build(RawFormat, s["raw"], f"{p}: sources.{name}.raw")
        sources[name] = _build(
            GuardSource, {**s, "name": name} if isinstance(s, dict) else s, f"{p}: sources.{name}"
        )
    clips = tuple(_build(GuardClip, c, f"{p}: clips[{i}]") for i, c in enumerate(data.get("clips") or []))
    spec = GuardSpec(sources, clips, str(data.get("verification", "")), int(data.get("version", 1)))
    _check_spec(spec, p)
    return spec


def _check_spec(spec: GuardSpec, where: Path | str) -> None:
    if not spec.clips:
        raise DataError(f"{where}: no clips")
    seen: set[str] = set()
    for i, c in enumerate(spec.clips):
        at = f"{where}: clips[{i}] ({c.id})"
        if c.id in seen:
            raise DataError(f"{at}: duplicate id")
        seen.add(c.id)
        if c.source not in spec.sources:
            raise DataError(f"{at}: unknown source {c.source!r}")
        if len(c.sha256) != 64 or any(ch not in "0123456789abcdef" for ch in c.sha256):
            raise DataError(f"{at}: sha256 must be 64 lower-case hex digits")
        if not c.text.strip():
            raise DataError(f"{at}: empty transcript")


def select_clips(clips: Sequence[GuardClip], max_clips: int | None = None) -> list[GuardClip]:
    """A fixed, stratified subset: round-robin over (source, kind) strata in spec order.

    ``max_clips=None`` (or >= len) keeps all. The order of the result is the spec order,
    so the same spec and ``max_clips`` always give the same set.
    """
    if max_clips is not None and max_clips < 1:
        raise DataError(f"max_clips must be at least 1, got {max_clips}")
    if max_clips is None or max_clips >= len(clips):
        return list(clips)
    strata: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(clips):
        strata[(c.source, c.kind)].append(i)
    queues = list(strata.values())
    picked: list[int] = []
    depth = 0
    while len(picked) < max_clips:
        for q in queues:
            if depth < len(q) and len(picked) < max_clips:
                picked.append(q[depth])
        depth += 1
    return [clips[i] for i in sorted(picked)]
