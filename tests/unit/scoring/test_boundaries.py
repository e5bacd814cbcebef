"""Segment-boundary accuracy (scoring.boundaries)."""

from __future__ import annotations

import pytest

from whisper_tune.scoring.boundaries import BoundaryScore, boundary_score


def test_exact_segments_match_everything() -> None:
    ref = [(0.5, 3.0), (3.8, 7.2)]
    s = boundary_score(ref, ref)
    assert (s.ref_matched, s.ref_total, s.pred_matched, s.pred_total) == (4, 4, 4, 4)
    assert s.accuracy == 1.0 and s.precision == 1.0


def test_tolerance_is_inclusive_and_merged_predictions_lose_boundaries() -> None:
    ref = [(0.5, 3.0), (3.8, 7.2)]
    pred = [(0.0, 7.7)]  # one segment over both turns, start 0.5 s early, end 0.5 s late
    s = boundary_score(ref, pred, tolerance_s=0.5)
    assert s.ref_matched == 2 and s.ref_total == 4  # 0.5 and 7.2 matched, the inner pair missed
    assert s.accuracy == pytest.approx(0.5)
    assert boundary_score(ref, pred, tolerance_s=0.4).ref_matched == 0


def test_touching_boundaries_count_once_and_scores_add() -> None:
    s = boundary_score([(0.0, 2.0), (2.0, 4.0)], [(0.1, 1.9), (2.1, 4.6)])
    assert s.ref_total == 3 and s.pred_total == 4
    assert s.ref_matched == 2 and s.pred_matched == 3  # 4.6 is 0.6 s from 4.0: 4.0 unmatched
    total = s + BoundaryScore(1, 2, 0, 1)
    assert (total.ref_matched, total.ref_total, total.pred_total) == (3, 5, 5)


def test_no_predictions() -> None:
    s = boundary_score([(0.0, 1.0)], [])
    assert s.accuracy == 0.0 and s.precision is None
    assert BoundaryScore().accuracy is None
