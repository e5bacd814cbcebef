"""Read the manifests users already have into one list of :class:`Sample`.

Why: real datasets arrive as NeMo JSONL, CSV/TSV exports, HF ``audiofolder`` trees or
hub datasets, and every one of them contains broken rows. Loading must keep every good
row and turn every bad one into a counted :class:`Skip` that names ``file:line`` and the
field, so a user can fix the source instead of guessing. Only problems that make the
whole file unusable (missing file, CSV header without a required column) raise
:class:`~whisper_tune.errors.DataError`.

Paths are resolved against the manifest's folder and must stay inside the data root
(default: that folder) unless ``allow_outside_root=True``: a manifest is data, and data
must not be able to make training read ``../../etc/passwd``. Both the path and the root are
resolved first, symlinks included (``os.path.realpath``), so a link inside the root that
points outside it is refused too, and the file checked is the file read later.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.data.manifest_io import file_problem, is_within, manifest_lines
from whisper_tune.data.subtitles import TRANSCRIPT_FIELDS
from whisper_tune.errors import DataError
from whisper_tune.paths import cache_root

__all__ = [
    "AUDIO_COLUMNS",
    "TEXT_COLUMNS",
    "LoadResult",
    "Sample",
    "Skip",
    "load_manifest",
    "load_manifests",
]

log = logging.getLogger(__name__)

#: Column names tried, in order, when no explicit audio/text column is given.
AUDIO_COLUMNS: tuple[str, ...] = ("audio_filepath", "audio", "path", "file_name", "file", "filename")
TEXT_COLUMNS: tuple[str, ...] = ("text", "transcription", "transcript", "sentence", "normalized_text")
_ID_COLUMNS: tuple[str, ...] = ("id", "utt_id", "utterance_id", "key")
_SEGMENT_KEYS = ("start", "offset", "channel", *TRANSCRIPT_FIELDS)  # a long recording's rows differ by these


@dataclass
class Sample:
    """One usable (so far) utterance.

    ``origin`` is ``"path/to/manifest.jsonl:12"`` and appears in every message about it.
    """

    id: str
    audio: str
    text: str
    duration: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str = ""


@dataclass
class Skip:
    """A row that was not used, and why (``reason`` is a stable key, see ``checks.REASONS``)."""

    origin: str
    reason: str
    message: str
    field: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        where = f"{self.origin} [{self.field}]" if self.field else self.origin
        return f"{where}: {self.message}"


@dataclass
class LoadResult:
    samples: list[Sample]
    skipped: list[Skip]


# --------------------------------------------------------------------------- helpers


class _Builder:
    """Turns raw rows into Samples: path resolution, root check, text check, duplicates."""

    def __init__(self, base: Path, root: Path, allow_outside_root: bool, split: str | None = None) -> None:
        self.base = base
        self.root = Path(os.path.realpath(root))  # symlinks resolved, like every audio path
        self.allow_outside_root = allow_outside_root
        self.split = split
        self.result = LoadResult([], [])
        self._seen: dict[tuple[str, ...], str] = {}
        self._ids: set[str] = set()

    def skip(self, origin: str, reason: str, message: str, field_name: str | None = None) -> None:
        s = Skip(origin=origin, reason=reason, message=message, field=field_name, split=self.split)
        log.debug("skip %s", s)
        self.result.skipped.append(s)

    def add(
        self,
        origin: str,
        row: dict[str, Any],
        audio_col: str | None,
        text_col: str | None,
    ) -> None:
        if audio_col is None or row.get(audio_col) in (None, ""):
            name = audio_col or AUDIO_COLUMNS[0]
            self.skip(origin, "missing_field", f"required field '{name}' is missing or empty", name)
            return
        tfield = next((k for k in TRANSCRIPT_FIELDS if isinstance(row.get(k), str) and row[k]), None)
        if tfield is not None:  # a long recording: its text is in a transcript file (data/segments.py)
            text_col = text_col or TEXT_COLUMNS[0]
            tpath = os.path.realpath(self.base / os.path.expanduser(row[tfield]))
            if not self.allow_outside_root and not is_within(Path(tpath), self.root):
                self.skip(
                    origin, "outside_root", f"transcript {row[tfield]!r} is outside {self.root}", tfield
                )
                return
            row = {**row, tfield: tpath, text_col: row.get(text_col) or f"<{tfield}>"}
        if text_col is None or text_col not in row or row[text_col] is None:
            name = text_col or TEXT_COLUMNS[0]
            self.skip(origin, "missing_field", f"required field '{name}' is missing", name)
            return
        raw_audio, text = row[audio_col], row[text_col]
        if not isinstance(raw_audio, str):
            self.skip(
                origin, "bad_field", f"'{audio_col}' must be a string path, got {raw_audio!r}", audio_col
            )
            return
        if not isinstance(text, str):
            self.skip(
                origin, "bad_field", f"'{text_col}' must be a string, got {type(text).__name__}", text_col
            )
            return
        if not text.strip():
            self.skip(origin, "empty_text", "transcript is empty or whitespace only", text_col)
            return
        if not any(ch.isalnum() for ch in text):  # "...", "?!", "-": nothing to learn to say
            self.skip(origin, "no_letters", f"transcript {text.strip()!r} has no letters or digits", text_col)
            return
        duration: float | None = None
        if row.get("duration") not in (None, ""):
            try:
                duration = float(row["duration"])
            except (TypeError, ValueError):
                self.skip(origin, "bad_field", f"'duration' is not a number: {row['duration']!r}", "duration")
                return
        named = Path(os.path.normpath(self.base / os.path.expanduser(raw_audio)))
        path = Path(os.path.realpath(named))  # the file a link points to is the file read
        if not self.allow_outside_root and not is_within(path, self.root):
            via = f" (a symlink to {path})" if path != named else ""
            self.skip(
                origin,
                "outside_root",
                f"audio path {raw_audio!r}{via} resolves outside the data root {self.root} "
                "(pass allow_outside_root=True / --allow-outside-root if this is intended)",
                audio_col,
            )
            return
        problem = file_problem(path)
        if problem is not None:
            self.skip(origin, problem[0], problem[1], audio_col)
            return
        text = text.strip()
        key = (str(path), text, *(str(row.get(k, "")) for k in _SEGMENT_KEYS))
        if key in self._seen:
            self.skip(
                origin, "duplicate", f"same audio and text as {self._seen[key]} (first kept)", audio_col
            )
            return
        self._seen[key] = origin
        meta = {k: v for k, v in row.items() if k not in (audio_col, text_col, "duration") and k is not None}
        if self.split is not None:
            meta.setdefault("split", self.split)
        sid = next((str(row[c]) for c in _ID_COLUMNS if row.get(c) not in (None, "")), None)
        if sid is None:
            try:
                sid = str(path.relative_to(self.root).with_suffix(""))
            except ValueError:
                sid = path.stem
        if sid in self._ids:
            sid = f"{sid}@{origin.rsplit(':', 1)[-1]}"
        self._ids.add(sid)
        self.result.samples.append(
            Sample(id=sid, audio=str(path), text=text, duration=duration, meta=meta, origin=origin)
        )


def _decoded_lines(path: Path, b: _Builder) -> Iterator[tuple[int, str]]:
    """(line number, text) of each decodable line (UTF-8, or UTF-16/32 by its mark); others are skips."""

    def bad(i: int, message: str) -> None:
        b.skip(f"{path}:{i}", "bad_encoding", message)

    return manifest_lines(path, bad)


def _pick(columns: list[str] | set[str], explicit: str | None, candidates: tuple[str, ...]) -> str | None:
    if explicit is not None:
        return explicit if explicit in columns else None
    return next((c for c in candidates if c in columns), None)


# --------------------------------------------------------------------------- formats


def _load_jsonl(path: Path, b: _Builder, audio_column: str | None, text_column: str | None) -> None:
    for i, line in _decoded_lines(path, b):
        if not line.strip():
            continue
        origin = f"{path}:{i}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            b.skip(origin, "bad_json", f"malformed JSON ({exc.msg}; column {exc.colno})")
            continue
        if not isinstance(row, dict):
            b.skip(origin, "bad_json", f"expected a JSON object, got {type(row).__name__}")
            continue
        audio_col = _pick(list(row), audio_column, AUDIO_COLUMNS) or (audio_column or AUDIO_COLUMNS[0])
        text_col = _pick(list(row), text_column, TEXT_COLUMNS) or (text_column or TEXT_COLUMNS[0])
        b.add(origin, row, audio_col, text_col)


def _load_csv(
    path: Path, b: _Builder, delimiter: str, audio_column: str | None, text_column: str | None
) -> None:
    good = list(_decoded_lines(path, b))
    while good and not good[-1][1].strip():
        good.pop()
    if not good:
        raise DataError(f"{path}: empty file (no header row)")
    line_numbers = [n for n, _ in good]
    # TSV exports (Common Voice...) do not quote: a '"' inside a transcript is text
    text = io.StringIO("\n".join(t for _, t in good))
    if delimiter == "\t":
        reader = csv.reader(text, delimiter=delimiter, quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(text, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise DataError(f"{path}:{line_numbers[0]}: cannot parse the CSV header: {exc}") from exc
    audio_col = _pick(header, audio_column, AUDIO_COLUMNS)
    text_col = _pick(header, text_column, TEXT_COLUMNS)
    for col, explicit, cands, kind in (
        (audio_col, audio_column, AUDIO_COLUMNS, "audio"),
        (text_col, text_column, TEXT_COLUMNS, "text"),
    ):
        if col is None:
            want = f"'{explicit}'" if explicit else "one of " + ", ".join(repr(c) for c in cands)
            raise DataError(
                f"{path}:{line_numbers[0]}: header has no {kind} column {want} "
                f"(header: {', '.join(header)}); set the column name explicitly if it differs"
            )
    while True:
        start = reader.line_num
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            b.skip(
                f"{path}:{line_numbers[min(start, len(line_numbers) - 1)]}", "bad_csv", f"cannot parse: {exc}"
            )
            continue
        origin = f"{path}:{line_numbers[min(start, len(line_numbers) - 1)]}"
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) > len(header):
            b.skip(origin, "bad_csv", f"{len(values)} fields but the header has {len(header)}")
            continue
        row: dict[str, Any] = {h: v for h, v in zip(header, values, strict=False)}
        b.add(origin, row, audio_col, text_col)


def _load_audiofolder(
    folder: Path, b_factory: Any, audio_column: str | None, text_column: str | None
) -> LoadResult:
    out = LoadResult([], [])
    metas = [folder / "metadata.csv", folder / "metadata.jsonl"]
    found = [m for m in metas if m.is_file()]
    targets: list[tuple[Path, str | None]]
    if found:
        targets = [(found[0], None)]
    else:
        targets = [
            (sub / name, sub.name)
            for sub in sorted(p for p in folder.iterdir() if p.is_dir())
            for name in ("metadata.csv", "metadata.jsonl")
            if (sub / name).is_file()
        ]
    if not targets:
        raise DataError(
            f"{folder}: not an audiofolder (no metadata.csv / metadata.jsonl here or in split folders)"
        )
    for meta_path, split in targets:
        b = b_factory(meta_path.parent, split)
        acol = audio_column or "file_name"
        if meta_path.suffix == ".csv":
            _load_csv(meta_path, b, ",", acol, text_column)
        else:
            _load_jsonl(meta_path, b, acol, text_column)
        out.samples.extend(b.result.samples)
        out.skipped.extend(b.result.skipped)
    return out


def _load_hf(spec: str, text_column: str | None, audio_column: str | None) -> LoadResult:
    """``hf://name[/config]:split``; audio bytes are written once to the cache as files."""
    body = spec[len("hf://") :]
    name, _, split = body.partition(":")
    split = split or "train"
    parts = name.split("/")
    config = None
    if len(parts) == 3:  # org/name/config; two parts are a hub id (org/name)
        name, config = "/".join(parts[:2]), parts[2]
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - optional extra
        raise DataError(
            f"{spec}: install the 'datasets' extra (pip install 'whisper-tune[datasets]')"
        ) from exc
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # network/hub errors are many types
        raise DataError(f"{spec}: cannot load the dataset: {exc}") from exc
    acol = audio_column or next((c for c in AUDIO_COLUMNS if c in ds.column_names), None)
    tcol = text_column or next((c for c in TEXT_COLUMNS if c in ds.column_names), None)
    for col, kind in ((acol, "audio"), (tcol, "text")):
        if col is None or col not in ds.column_names:
            raise DataError(f"{spec}: no {kind} column (columns: {', '.join(ds.column_names)})")
    assert acol is not None and tcol is not None
    if isinstance(ds.features.get(acol), datasets.Audio):
        ds = ds.cast_column(acol, datasets.Audio(decode=False))
    cache = cache_root() / "hf-audio"
    cache.mkdir(parents=True, exist_ok=True)
    b = _Builder(cache, cache, allow_outside_root=True)
    for i, row in enumerate(ds):
        origin = f"{spec}:{i}"
        a = row[acol]
        if isinstance(a, dict):
            raw = a.get("bytes")
            p = a.get("path")
            if raw:
                suffix = Path(p).suffix if p else ".wav"
                target = cache / (hashlib.sha256(raw).hexdigest()[:32] + suffix)
                if not target.exists():
                    tmp = target.with_suffix(target.suffix + ".tmp")
                    tmp.write_bytes(raw)
                    tmp.replace(target)
                a = str(target)
            else:
                a = p
        row = dict(row)
        row[acol] = a
        b.add(origin, row, acol, tcol)
    return b.result


# --------------------------------------------------------------------------- public


def load_manifest(
    path: str | os.PathLike[str],
    *,
    fmt: str = "auto",
    text_column: str | None = None,
    audio_column: str | None = None,
    root: str | os.PathLike[str] | None = None,
    allow_outside_root: bool = False,
) -> LoadResult:
    """Load one manifest. ``fmt``: auto | jsonl | csv | tsv | audiofolder | hf.

    Relative audio paths resolve against the manifest's folder; the data root defaults to
    that folder. Bad rows become :class:`Skip` entries; a file that cannot be used at all
    raises :class:`DataError`.
    """
    spec = str(path)
    if fmt == "hf" or spec.startswith("hf://"):
        if not spec.startswith("hf://"):
            spec = "hf://" + spec
        return _load_hf(spec, text_column, audio_column)
    p = Path(os.path.abspath(os.path.expanduser(spec)))
    if not p.exists():
        raise DataError(f"{p}: manifest not found")
    if fmt == "auto":
        if p.is_dir():
            fmt = "audiofolder"
        elif p.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            fmt = "jsonl"
        elif p.suffix.lower() == ".tsv":
            fmt = "tsv"
        elif p.suffix.lower() in (".csv", ".txt"):
            fmt = "csv"
        else:
            raise DataError(f"{p}: cannot tell the manifest format from the name; pass fmt=jsonl|csv|tsv")

    def make(base: Path, split: str | None = None) -> _Builder:
        r = Path(os.path.abspath(root)) if root is not None else (p if p.is_dir() else p.parent)
        return _Builder(base, r, allow_outside_root, split)

    if fmt == "audiofolder":
        if not p.is_dir():
            raise DataError(f"{p}: fmt=audiofolder needs a folder")
        return _load_audiofolder(p, make, audio_column, text_column)
    if p.is_dir():
        raise DataError(f"{p}: is a folder; pass a manifest file or use fmt=audiofolder")
    b = make(p.parent)
    if fmt == "jsonl":
        _load_jsonl(p, b, audio_column, text_column)
    elif fmt in ("csv", "tsv"):
        _load_csv(p, b, "\t" if fmt == "tsv" else ",", audio_column, text_column)
    else:
        raise DataError(f"{p}: unknown manifest format {fmt!r} (auto, jsonl, csv, tsv, audiofolder, hf)")
    return b.result


def load_manifests(sources: list[str] | str, **kwargs: Any) -> LoadResult:
    """Several manifests into one result; a manifest's stem names its split if the rows don't."""
    items = [sources] if isinstance(sources, str) else list(sources)
    out = LoadResult([], [])
    for src in items:
        r = load_manifest(src, **kwargs)
        if len(items) > 1 and not str(src).startswith("hf://"):
            stem = Path(str(src)).stem
            for s in r.samples:
                s.meta.setdefault("split", stem)
            for sk in r.skipped:
                sk.split = sk.split or stem
        out.samples.extend(r.samples)
        out.skipped.extend(r.skipped)
    return out
