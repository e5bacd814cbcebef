"""Long-form results: one model's per-mode scores, and base vs tuned, as JSON and Markdown.

Why separate from ``longform``: that module decodes; this one only holds and renders what the
decoding produced (the compare report imports these without loading a model).

Boundaries are scored twice when the segment times were moved onto speech
(``inference.speech_times``): ``boundaries`` for the times the report returns, ``raw_boundaries``
for the model's own timestamp tokens, so the model's timestamp skill stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.scoring.boundaries import TOLERANCE_S, BoundaryScore

from .markdown import _pct, _rel, _table
from .report import EvalResult, relative_change_pct

__all__ = ["LongformComparison", "LongformResult", "ModeResult"]


def _pooled(scores: list[BoundaryScore | None]) -> BoundaryScore | None:
    scored = [b for b in scores if b is not None]
    return sum(scored, BoundaryScore()) if scored else None


def _acc(b: BoundaryScore | None) -> float | None:
    return b.accuracy if b is not None else None


@dataclass
class ModeResult:
    """One model, one decoding mode, over the long-form set."""

    mode: str
    result: EvalResult  # full-transcript WER (one "utterance" per recording)
    segments: list[list[tuple[float, float, str]]]  # per recording
    boundaries: list[BoundaryScore | None]  # per recording; None without reference segments
    seconds: float
    # the model's own timestamp tokens, when ``segments`` were moved onto speech (else None)
    raw_boundaries: list[BoundaryScore | None] | None = None

    @property
    def boundary(self) -> BoundaryScore | None:
        return _pooled(self.boundaries)

    @property
    def raw_boundary(self) -> BoundaryScore | None:
        return _pooled(self.raw_boundaries) if self.raw_boundaries is not None else None

    def to_dict(self) -> dict[str, Any]:
        b = self.boundary
        audio = self.result.audio_seconds
        return {
            "wer": self.result.wer,
            "wer_ortho": self.result.wer_ortho,
            "counts": self.result.counts.to_dict(),
            "boundaries": b.to_dict() if b is not None else None,
            "speech_times": self.raw_boundaries is not None,
            "boundaries_model_timestamps": (rb.to_dict() if (rb := self.raw_boundary) is not None else None),
            "seconds": self.seconds,
            "rtfx": audio / self.seconds if self.seconds > 0 else None,
            "recordings": [
                {
                    "id": u.id,
                    "duration": u.duration,
                    "wer": u.score.wer,
                    "ref": u.ref,
                    "hyp": u.hyp,
                    "boundaries": bs.to_dict() if bs is not None else None,
                    "segments": [{"start": round(s, 2), "end": round(e, 2), "text": t} for s, e, t in segs],
                }
                for u, segs, bs in zip(self.result.utterances, self.segments, self.boundaries, strict=True)
            ],
        }


@dataclass
class LongformResult:
    """One model over the long-form set, in each decoding mode."""

    model: str
    data: str
    modes: dict[str, ModeResult]
    tolerance_s: float = TOLERANCE_S
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        first = next(iter(self.modes.values()))
        return {
            "model": self.model,
            "data": self.data,
            "recordings": len(first.result.utterances),
            "audio_seconds": first.result.audio_seconds,
            "tolerance_s": self.tolerance_s,
            "modes": {m: r.to_dict() for m, r in self.modes.items()},
            "skipped": self.skipped,
        }

    def markdown_lines(self) -> list[str]:
        first = next(iter(self.modes.values()))
        lines = [
            f"## Long-form ({len(first.result.utterances)} recordings, "
            f"{first.result.audio_seconds / 60:.1f} min, `{Path(self.data).name}`)",
            "",
        ]
        rows = []
        for m, r in self.modes.items():
            b = r.boundary
            rows.append(
                (
                    m,
                    _pct(r.result.wer),
                    _pct(b.accuracy if b else None),
                    _pct(b.precision if b else None),
                    _pct(_acc(r.raw_boundary)) if r.raw_boundaries is not None else "-",
                    f"{r.seconds:.1f} s",
                )
            )
        lines += _table(
            [
                "decoding",
                "WER",
                f"ref. boundaries within {self.tolerance_s} s",
                "pred. boundaries near ref.",
                "same, model's own timestamps",
                "time",
            ],
            rows,
        )
        return lines + _explainer()


def _explainer() -> list[str]:
    return [
        "sequential = Transformers' long-form generate (timestamp-driven seeking, conditioned on the "
        "previous text, temperature fallback); chunked = cut on silence into <= 30 s windows decoded "
        "in parallel batches (the server's path). Boundaries: each reference segment's start and end; "
        "segment times moved onto the speech they cover (Silero VAD, `inference.speech_times`) unless "
        "`--speech-times off`; the model's own timestamp tokens scored beside them.",
        "",
    ]


@dataclass
class LongformComparison:
    """Base vs tuned on the long-form set (the compare report's long-form section)."""

    base: LongformResult
    tuned: LongformResult

    def to_dict(self) -> dict[str, Any]:
        modes = {}
        for m, b in self.base.modes.items():
            t = self.tuned.modes.get(m)
            if t is None:
                continue
            bb, tb = b.boundary, t.boundary
            modes[m] = {
                "base_wer": b.result.wer,
                "tuned_wer": t.result.wer,
                "relative_change_pct": relative_change_pct(b.result.wer, t.result.wer),
                "base_boundary_accuracy": bb.accuracy if bb else None,
                "tuned_boundary_accuracy": tb.accuracy if tb else None,
                "base_boundary_precision": bb.precision if bb else None,
                "tuned_boundary_precision": tb.precision if tb else None,
                "base_boundary_accuracy_model_timestamps": _acc(b.raw_boundary),
                "tuned_boundary_accuracy_model_timestamps": _acc(t.raw_boundary),
                "base_seconds": b.seconds,
                "tuned_seconds": t.seconds,
            }
        return {"summary": modes, "base": self.base.to_dict(), "tuned": self.tuned.to_dict()}

    def markdown_lines(self) -> list[str]:
        first = next(iter(self.base.modes.values()))
        lines = [
            f"## Long-form ({len(first.result.utterances)} recordings, "
            f"{first.result.audio_seconds / 60:.1f} min, `{Path(self.base.data).name}`)",
            "",
        ]
        rows = []
        for m, s in self.to_dict()["summary"].items():
            rows.append(
                (
                    m,
                    _pct(s["base_wer"]),
                    _pct(s["tuned_wer"]),
                    _rel(s["relative_change_pct"]),
                    _pct(s["base_boundary_accuracy"]),
                    _pct(s["tuned_boundary_accuracy"]),
                    f"{_pct(s['base_boundary_accuracy_model_timestamps'])} / "
                    f"{_pct(s['tuned_boundary_accuracy_model_timestamps'])}",
                    f"{s['base_seconds']:.1f} / {s['tuned_seconds']:.1f} s",
                )
            )
        tol = self.base.tolerance_s
        lines += _table(
            [
                "decoding",
                "base WER",
                "tuned WER",
                "change",
                f"base boundaries ({tol} s)",
                f"tuned boundaries ({tol} s)",
                "model's own timestamps, base / tuned",
                "time base / tuned",
            ],
            rows,
        )
        lines += _explainer()
        tuned_seq = self.tuned.modes.get("sequential") or next(iter(self.tuned.modes.values()))
        if tuned_seq.result.utterances:
            u, segs = tuned_seq.result.utterances[0], tuned_seq.segments[0]
            lines += [f"First recording (`{u.id}`), tuned, {tuned_seq.mode}, first segments:", ""]
            lines += _table(
                ["start", "end", "text"], [(f"{s:.2f}", f"{e:.2f}", t.strip()) for s, e, t in segs[:12]]
            )
        return lines
