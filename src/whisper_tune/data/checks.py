"""The data report: what is usable, and why the rest is not.

Why: a user who feeds 10,000 rows and trains on 7,000 must be told which 3,000 were
dropped and why, with ``file:line`` examples to go and fix. ``whisper-tune data check``
prints this report and training writes the same one into the run directory
(``data_report.json`` / ``data_report.md``), so what was checked is what was trained on.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HIST_EDGES", "REASONS", "WARNINGS", "DataReport"]

#: Every skip reason, with what it means (the report prints these).
REASONS: dict[str, str] = {
    "bad_encoding": "manifest line cannot be decoded (UTF-8, or UTF-16/32 by its byte-order mark)",
    "bad_json": "manifest line is not a JSON object",
    "bad_csv": "CSV row cannot be parsed / has too many fields",
    "missing_field": "a required field (audio path or text) is missing",
    "bad_field": "a field has the wrong type (e.g. duration not a number)",
    "outside_root": "audio path escapes the data root",
    "missing_file": "audio file does not exist",
    "permission_denied": "audio file exists but this user may not read it (or enter its folder)",
    "duplicate": "same audio path and text as an earlier row (first kept)",
    "empty_text": "transcript empty or whitespace only",
    "no_letters": "transcript has no letters or digits (punctuation or symbols only)",
    "label_too_long": "tokenized transcript longer than max_label_tokens",
    "empty_audio": "audio file is empty (0 bytes or 0 samples)",
    "unreadable_audio": "audio bytes cannot be decoded",
    "silent": "audio is silent (RMS below threshold)",
    "too_long": "clip longer than the maximum duration (long_audio='reject')",
    "malformed_cue": "SRT/WebVTT block that is not a readable cue (long recordings)",
    "bad_times": "segment ends before it starts, or starts before 0 s",
    "non_monotonic": "segment starts before the previous segment of its transcript",
    "overlap": "segment overlaps the previous one on the same channel (first kept)",
    "past_end": "segment lies (partly) past the end of its audio",
    "segment_too_long": "segment over the window length with no punctuation to split it at",
    "mono_split": "data.channels: split on a mono recording",
    "no_channel": "data.channels: split, but the transcript/segment names no channel",
}
#: Problems that are reported but keep the row.
WARNINGS: dict[str, str] = {
    "clipped": "share of samples at full scale above threshold (kept)",
    "duration_mismatch": "manifest duration differs from the audio's (kept; measured one used)",
}
#: Duration histogram bin edges in seconds (last bin open-ended).
HIST_EDGES: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 20.0, 25.0, 30.0)
_N_EXAMPLES = 5


def _split_entry() -> dict[str, float]:
    return {"usable": 0, "skipped": 0, "seconds": 0.0}


@dataclass
class DataReport:
    """Counts, reasons with first examples, hours per split and a duration histogram."""

    sources: list[str] = field(default_factory=list)
    usable: int = 0
    usable_seconds: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    warning_examples: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, dict[str, float]] = field(default_factory=dict)
    histogram: list[int] = field(default_factory=lambda: [0] * len(HIST_EDGES))
    max_label_tokens_seen: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    long_form: dict[str, Any] = field(default_factory=dict)  # recordings, segments, windows (longform.py)
    sample_rates: dict[str, dict[str, float]] = field(default_factory=dict)  # source rate -> items, seconds

    # ------------------------------------------------------------------ filling
    def add_usable(self, duration: float, split: str | None = None, label_tokens: int = 0) -> None:
        self.usable += 1
        self.usable_seconds += duration
        idx = max(i for i, e in enumerate(HIST_EDGES) if duration >= e) if duration >= 0 else 0
        self.histogram[idx] += 1
        self.max_label_tokens_seen = max(self.max_label_tokens_seen, label_tokens)
        if split is not None:
            e = self.splits.setdefault(split, _split_entry())
            e["usable"] += 1
            e["seconds"] += duration

    def add_rate(self, sample_rate: int, duration: float) -> None:
        e = self.sample_rates.setdefault(str(int(sample_rate)), {"items": 0, "seconds": 0.0})
        e["items"] += 1
        e["seconds"] += duration

    def add_skip(self, reason: str, origin: str, message: str, split: str | None = None) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < _N_EXAMPLES:
            ex.append(f"{origin}: {message}")
        if split is not None:
            self.splits.setdefault(split, _split_entry())["skipped"] += 1

    def add_warning(self, reason: str, origin: str, message: str) -> None:
        self.warnings[reason] = self.warnings.get(reason, 0) + 1
        ex = self.warning_examples.setdefault(reason, [])
        if len(ex) < _N_EXAMPLES:
            ex.append(f"{origin}: {message}")

    # ------------------------------------------------------------------ reading
    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def total(self) -> int:
        return self.usable + self.n_skipped

    @property
    def hours(self) -> float:
        return self.usable_seconds / 3600.0

    def to_dict(self) -> dict[str, Any]:
        labels = [
            f"{HIST_EDGES[i]:g}-{HIST_EDGES[i + 1]:g}s"
            if i + 1 < len(HIST_EDGES)
            else f">={HIST_EDGES[i]:g}s"
            for i in range(len(HIST_EDGES))
        ]
        return {
            "sources": list(self.sources),
            "total": self.total,
            "usable": self.usable,
            "skipped_total": self.n_skipped,
            "usable_hours": round(self.hours, 6),
            "skipped": {
                r: {"count": n, "meaning": REASONS.get(r, r), "examples": self.examples.get(r, [])}
                for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1])
            },
            "warnings": {
                r: {"count": n, "meaning": WARNINGS.get(r, r), "examples": self.warning_examples.get(r, [])}
                for r, n in sorted(self.warnings.items())
            },
            "splits": {
                s: {
                    "usable": int(e["usable"]),
                    "skipped": int(e["skipped"]),
                    "hours": round(e["seconds"] / 3600, 6),
                }
                for s, e in sorted(self.splits.items())
            },
            "duration_histogram": dict(zip(labels, self.histogram, strict=True)),
            "max_label_tokens_seen": self.max_label_tokens_seen,
            "settings": dict(self.settings),
            "long_form": dict(self.long_form),
            "source_sample_rates": {r: dict(e) for r, e in sorted(self.sample_rates.items())},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        d = self.to_dict()
        lines = ["# Data report", ""]
        if self.sources:
            lines += ["Sources: " + ", ".join(f"`{s}`" for s in self.sources), ""]
        lines += [
            "| rows | count | hours |",
            "|---|---:|---:|",
            f"| usable | {self.usable} | {self.hours:.3f} |",
            f"| not usable | {self.n_skipped} | |",
            f"| total | {self.total} | |",
            "",
        ]
        if self.skipped:
            lines += _reason_table("Not usable, per reason", "reason", d["skipped"])
        if self.warnings:
            lines += _reason_table("Warnings (rows kept)", "warning", d["warnings"])
        if self.splits:
            lines += ["## Per split", "", "| split | usable | not usable | hours |", "|---|---:|---:|---:|"]
            for s, e in d["splits"].items():
                lines.append(f"| {s} | {e['usable']} | {e['skipped']} | {e['hours']:.3f} |")
            lines.append("")
        lines += _long_form_lines(self.long_form, self.sample_rates)
        lines += ["## Duration histogram (usable clips)", "", "```", *self.histogram_lines(), "```", ""]
        return "\n".join(lines)

    def histogram_lines(self, width: int = 40) -> list[str]:
        peak = max(self.histogram) if any(self.histogram) else 1
        out = []
        for label, n in self.to_dict()["duration_histogram"].items():
            bar = "#" * (math.ceil(width * n / peak) if n else 0)
            out.append(f"{label:>9} {n:>7} {bar}")
        return out

    def write(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``data_report.json`` and ``data_report.md`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        pj, pm = d / "data_report.json", d / "data_report.md"
        pj.write_text(self.to_json() + "\n", encoding="utf-8")
        pm.write_text(self.to_markdown(), encoding="utf-8")
        return pj, pm

    def summary(self) -> str:
        """One line per reason; used in DataError messages."""
        parts = [f"{self.usable} usable of {self.total} rows ({self.hours:.3f} h)"]
        for r, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            first = self.examples.get(r, [""])[0]
            parts.append(f"  {r}: {n}  e.g. {first}")
        return "\n".join(parts)


def _reason_table(title: str, column: str, entries: dict[str, Any]) -> list[str]:
    """Markdown section: one row per reason with its count, meaning and first examples."""
    lines = [f"## {title}", "", f"| {column} | rows | meaning | first examples |", "|---|---:|---|---|"]
    for r, e in entries.items():
        ex = "<br>".join(_md(x) for x in e["examples"])
        lines.append(f"| {r} | {e['count']} | {e['meaning']} | {ex} |")
    return [*lines, ""]


def _long_form_lines(lf: dict[str, Any], rates: dict[str, dict[str, float]]) -> list[str]:
    """Long recordings (segments -> windows, per channel) and the source sample rates."""
    lines: list[str] = []
    if lf:
        lines += [
            "## Long recordings",
            "",
            "| recordings | segments read | used | split | windows | timestamped | prev-text |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines.append(
            f"| {lf['recordings']} | {lf['segments_read']} | {lf['segments_used']} | "
            f"{lf['segments_split']} | {lf['windows']} | {lf['timestamped']} | {lf['prev_text']} |"
        )
        lines += [
            "",
            f"Channels: `{lf['channels_mode']}`",
            "",
            "| channel | windows | hours |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {c} | {e['windows']} | {e['seconds'] / 3600:.3f} |" for c, e in lf["per_channel"].items()
        ]
        lines.append("")
    if rates:
        lines += [
            "## Source sample rates (resampled once to 16 kHz)",
            "",
            "| Hz | items | hours |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {r} | {int(e['items'])} | {e['seconds'] / 3600:.3f} |" for r, e in sorted(rates.items())
        ]
        lines.append("")
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
