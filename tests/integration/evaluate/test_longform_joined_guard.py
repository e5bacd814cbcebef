"""Long-form decoding of real speech: the guard's clips joined into ~1-minute recordings
(``data join``), tiny.en, both modes.

A regression test too: windows of several recordings decoded in one batch used to crash the
chunked mode (and ``serve``) inside transformers' ``generate`` when one window hit the token cap
mid-segment (TypeError slicing ``input_features`` = None, with ``encoder_outputs`` passed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisper_tune.data.joined import join_clips
from whisper_tune.evaluate.longform import evaluate_longform
from whisper_tune.train.guard import resolve_guard_manifest

pytestmark = pytest.mark.integration


def test_joined_guard_decodes_in_both_modes(tmp_path: Path) -> None:
    guard = resolve_guard_manifest("builtin")
    assert guard is not None
    joined = join_clips(guard, tmp_path / "lf", seconds=60.0)
    assert joined.recordings >= 2 and not joined.skipped
    res = evaluate_longform("tiny.en", joined.manifest, modes=("chunked", "sequential"))
    rows = [json.loads(x) for x in joined.manifest.read_text().splitlines()]
    for mode in ("chunked", "sequential"):
        m = res.modes[mode]
        assert len(m.segments) == len(rows)
        # real, clearly spoken speech: long-form WER stays near the clip-level one (~3 %)
        assert m.result.wer < 0.2, (mode, m.result.wer)
        for segs, row in zip(m.segments, rows, strict=True):
            starts = [s for s, _e, _t in segs]
            assert starts == sorted(starts) and segs[-1][1] <= row["duration"] + 1.0
        # measured: 66-81 % of reference boundaries matched, 76-80 % of predicted ones near a reference
        b = m.boundary
        assert b is not None and (b.accuracy or 0) > 0.5 and (b.precision or 0) > 0.6, b.to_dict()
        assert m.raw_boundary is not None  # the model's own timestamps, scored beside the snapped ones
