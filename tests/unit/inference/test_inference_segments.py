"""Whisper timestamp tokens -> absolute, clamped, non-decreasing segments."""

from __future__ import annotations

from whisper_tune.inference import tokens_to_segments

TS = 50363  # <|0.00|> in the tiny.en vocabulary
EOT = 50256


def ts(seconds: float) -> int:
    return TS + round(seconds / 0.02)


def decode(ids: list[int]) -> str:
    return " " + "-".join(str(i) for i in ids)


def run(
    ids: list[int], offset: float = 0.0, window: float = 30.0
) -> list[tuple[float, float, str, list[int]]]:
    return tokens_to_segments(ids, timestamp_begin=TS, eot=EOT, offset=offset, window_s=window, decode=decode)


def test_pairs_with_offset() -> None:
    out = run([ts(0), 1, 2, ts(2.4), ts(2.4), 3, ts(5.0)], offset=60.0)
    assert [(round(s, 2), round(e, 2), t) for s, e, t, _ in out] == [(60.0, 62.4, " 1-2"), (62.4, 65.0, " 3")]


def test_unclosed_tail_runs_to_window_end_and_specials_dropped() -> None:
    out = run([ts(1.0), 7, EOT, 8], window=12.5)
    assert out == [(1.0, 12.5, " 7-8", [7, 8])]


def test_no_timestamps_is_one_segment() -> None:
    assert run([5, 6], window=4.0) == [(0.0, 4.0, " 5-6", [5, 6])]


def test_clamped_and_monotonic() -> None:
    # a hallucinated timestamp past the window and one going backwards
    out = run([ts(0), 1, ts(29.0), ts(3.0), 2, ts(40.0)], window=10.0)
    starts = [s for s, *_ in out]
    ends = [e for _, e, *_ in out]
    assert ends == [10.0, 10.0] and starts == [0.0, 10.0]
    assert all(e >= s for s, e in zip(starts, ends, strict=True))


def test_blank_text_segments_skipped() -> None:
    out = tokens_to_segments(
        [ts(0), 1, ts(1)], timestamp_begin=TS, eot=EOT, offset=0, window_s=5, decode=lambda _: "  "
    )
    assert out == []
