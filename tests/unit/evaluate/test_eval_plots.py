"""The WER-by-group figure stays readable with many groups (e.g. 40 speakers)."""

from __future__ import annotations

import struct
from pathlib import Path

from whisper_tune.evaluate.plots import MAX_BARS, ROW_INCHES, _pack_rows, _panels, plot_wer_by_group


def png_size(path: Path) -> tuple[int, int]:
    w, h = struct.unpack(">II", path.read_bytes()[16:24])
    return w, h


def test_rows_wrap_at_the_width_limit() -> None:
    assert _pack_rows([3, 3, 3], 10) == [[0, 1, 2]]
    assert _pack_rows([6, 6, 3, 9], 10) == [[0], [1, 2], [3]]
    assert _pack_rows([12], 10) == [[0]]  # a wide panel still gets a row of its own


def test_many_groups_wrap_and_keep_the_worst(tmp_path: Path) -> None:
    speakers = {f"spk{i:02d}": {"base_wer": 0.3, "tuned_wer": i / 100} for i in range(40)}
    groups = {"speaker": speakers, "channel": {"phone": {"base_wer": 0.3, "tuned_wer": 0.1}}}
    overall = {"base_wer": 0.3, "tuned_wer": 0.1}
    series, labels = ("base_wer", "tuned_wer"), ("base", "tuned")
    one_row = plot_wer_by_group(
        {"channel": groups["channel"]}, tmp_path / "small.png", overall=overall, series=series, labels=labels
    )
    wide = plot_wer_by_group(groups, tmp_path / "wide.png", overall=overall, series=series, labels=labels)
    (_, h1), (w2, h2) = png_size(one_row), png_size(wide)
    assert w2 <= ROW_INCHES * 110 + 1  # was 40 inches wide before wrapping
    assert h2 >= 2 * h1 - 10  # the speaker panel moved to a row of its own

    panels = _panels(groups, overall, "tuned_wer")
    assert [title for title, _ in panels] == ["overall", f"speaker ({MAX_BARS} highest of 40)", "channel"]
    assert set(panels[1][1]) == {f"spk{i:02d}" for i in range(40 - MAX_BARS, 40)}  # highest tuned WER
