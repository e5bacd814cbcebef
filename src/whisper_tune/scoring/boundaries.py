"""Segment-boundary accuracy: how well predicted segment times match reference segment times.

Why: a model tuned without timestamp tokens can keep its words and lose its timestamps
(transformers #30148); subtitles, speaker turns and redaction by time all depend on them. The
measure here is the one the long-form report states: the share of reference boundaries (each
reference segment's start and end) that have a predicted boundary within ``tolerance_s``
(0.5 s by default), and, the other way round, the share of predicted boundaries near a
reference one (a model that emits a boundary every 0.5 s would match every reference point
but few of its own would be near one). Boundaries closer than 50 ms (an end touching the next
start) count once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TOLERANCE_S", "BoundaryScore", "boundary_score"]

TOLERANCE_S = 0.5


@dataclass
class BoundaryScore:
    """Reference boundaries matched by a prediction (recall) and predictions near a reference."""

    ref_matched: int = 0
    ref_total: int = 0
    pred_matched: int = 0
    pred_total: int = 0

    def __add__(self, other: BoundaryScore) -> BoundaryScore:
        return BoundaryScore(
            self.ref_matched + other.ref_matched,
            self.ref_total + other.ref_total,
            self.pred_matched + other.pred_matched,
            self.pred_total + other.pred_total,
        )

    @property
    def accuracy(self) -> float | None:
        """Share of reference boundaries with a predicted boundary within the tolerance."""
        return self.ref_matched / self.ref_total if self.ref_total else None

    @property
    def precision(self) -> float | None:
        return self.pred_matched / self.pred_total if self.pred_total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "ref_matched": self.ref_matched,
            "ref_boundaries": self.ref_total,
            "pred_matched": self.pred_matched,
            "pred_boundaries": self.pred_total,
        }


def _boundaries(segments: Sequence[tuple[float, float]], merge_s: float = 0.05) -> list[float]:
    points = sorted(float(t) for s, e in segments for t in (s, e))
    out: list[float] = []
    for p in points:
        if not out or p - out[-1] > merge_s:  # an end touching the next start is one boundary
            out.append(p)
    return out


def _near(points: list[float], targets: list[float], tol: float) -> int:
    if not points or not targets:
        return 0
    arr = np.asarray(targets)
    return int(sum(1 for p in points if float(np.min(np.abs(arr - p))) <= tol + 1e-9))


def boundary_score(
    ref: Sequence[tuple[float, float]], pred: Sequence[tuple[float, float]], tolerance_s: float = TOLERANCE_S
) -> BoundaryScore:
    """Boundary accuracy of predicted ``(start, end)`` segments against reference ones."""
    rb, pb = _boundaries(ref), _boundaries(pred)
    return BoundaryScore(_near(rb, pb, tolerance_s), len(rb), _near(pb, rb, tolerance_s), len(pb))
