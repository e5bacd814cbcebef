"""Segment times moved onto speech (inference.speech_times): the rule, the VAD, the backend step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from test_inference_gate import HelloWhisper

from whisper_tune.inference import BackendOptions, DecodeOptions, FeatureBank, HFBackend, InvalidOptionError
from whisper_tune.inference.speech_times import snap_segments, snap_times, speech_spans
from whisper_tune.inference.types import Segment, Word
from wt_audio_testutil import silence, voiced

SR = 16000


def two_turns() -> np.ndarray:
    """Speech 0.5-4.5 s and 5.9-8.9 s in a 10 s recording (a 1.4 s pause between two turns)."""
    return np.concatenate([silence(0.5), voiced(4.0), silence(1.4), voiced(3.0, 1), silence(1.1)])


def test_touching_whole_second_segments_move_onto_the_speech() -> None:
    spans = [(0.45, 4.6), (5.9, 8.8)]
    assert snap_times([(0.0, 5.0), (5.0, 9.0)], spans) == [(0.45, 4.6), (5.9, 8.8)]


def test_a_boundary_just_inside_speech_moves_to_the_pause_and_its_neighbour_follows() -> None:
    spans = [(0.5, 3.0), (3.4, 6.0)]
    # the model split 0.2 s late, inside the second stretch: both edges move to the pause
    assert snap_times([(0.5, 3.6), (3.6, 6.0)], spans) == [(0.5, 3.0), (3.4, 6.0)]
    # 0.2 s early, inside the first stretch: the same
    assert snap_times([(0.5, 2.8), (2.8, 6.0)], spans) == [(0.5, 3.0), (3.4, 6.0)]


def test_a_boundary_far_from_any_pause_and_a_segment_over_no_speech_keep_their_times() -> None:
    spans = [(0.0, 10.0)]
    assert snap_times([(0.0, 5.0), (5.0, 10.0)], spans) == [(0.0, 5.0), (5.0, 10.0)]  # one long stretch
    assert snap_times([(12.0, 14.0)], spans) == [(12.0, 14.0)]  # after the last speech
    assert snap_times([(1.0, 2.0)], []) == [(1.0, 2.0)]  # no speech found at all


def test_snapped_times_stay_ordered_and_inside_the_recording() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        cuts = np.sort(rng.uniform(0, 60, size=2 * int(rng.integers(1, 12))))
        spans = [(float(a), float(b)) for a, b in cuts.reshape(-1, 2) if b > a]
        marks = np.sort(rng.uniform(0, 60, size=2 * int(rng.integers(1, 10))))
        segs = [(float(a), float(b)) for a, b in marks.reshape(-1, 2) if b > a]
        out = snap_times(segs, spans)
        assert len(out) == len(segs)
        for (s, e), (s0, e0) in zip(out, segs, strict=True):
            assert s < e
            assert s0 - 0.6 - 1e-9 <= s and e <= e0 + 0.6 + 1e-9  # moved at most by the nudge
        for (_s, e), (s2, _e) in zip(out, out[1:], strict=False):
            assert e <= s2 + 1e-9  # no overlap with the next segment


def test_speech_spans_find_the_two_turns() -> None:
    spans = speech_spans(two_turns())
    assert spans and spans == sorted(spans)
    for a, b in spans:  # every stretch inside a turn (Silero may split a turn at a modulation dip)
        assert (0.35 <= a < b <= 4.65) or (5.75 <= a < b <= 9.05)
    assert spans[0][0] == pytest.approx(0.5, abs=0.25)
    assert min(a for a, _b in spans if a > 5.0) == pytest.approx(5.9, abs=0.25)
    assert speech_spans(silence(3.0)) == [] and speech_spans(np.zeros(0, np.float32)) == []


def test_snap_segments_changes_times_only() -> None:
    audio = two_turns()
    words = [Word(" hello", 0.1, 4.8, 0.9)]
    segs = [Segment(0, 0.0, 5.0, " hello", [1, 2], words=words), Segment(1, 5.0, 9.0, " there", [3])]
    out = snap_segments(segs, audio)
    assert [s.text for s in out] == [" hello", " there"] and out[0].words == words and out[0].tokens == [1, 2]
    want = snap_times([(0.0, 5.0), (5.0, 9.0)], speech_spans(audio))
    assert [(s.start, s.end) for s in out] == [(round(a, 3), round(b, 3)) for a, b in want]
    assert out[0].start > 0.3 and out[0].end < 4.7 and out[1].start > 5.7  # off the pauses
    assert snap_segments([], audio) == []


def test_a_segment_over_two_turns_is_cut_at_the_pause_between_its_words() -> None:
    audio = two_turns()  # speech 0.5-4.5 s and 5.9-8.9 s
    words = [
        Word(" Can", 0.5, 1.5, 0.9, [11]),
        Word(" I", 1.5, 4.4, 0.9, [12]),
        Word(" Yes.", 6.0, 8.8, 0.9, [13, 14]),
    ]
    seg = Segment(0, 0.0, 9.0, " Can I Yes.", [11, 12, 13, 14], words=words, avg_logprob=-0.2)
    out = snap_segments([seg], audio)
    assert [s.text for s in out] == [" Can I", " Yes."] and [s.id for s in out] == [0, 1]
    assert [s.tokens for s in out] == [[11, 12], [13, 14]] and out[1].words == words[2:]
    assert out[0].end < 4.7 and out[1].start > 5.7 and out[1].avg_logprob == -0.2
    # words that do not spell the text, or carry no tokens: kept whole (times still snapped)
    odd = Segment(0, 0.0, 9.0, " Can I, yes.", [11, 12, 13, 14], words=words)
    assert [s.text for s in snap_segments([odd], audio)] == [" Can I, yes."]
    bare = [Word(w.word, w.start, w.end) for w in words]
    assert len(snap_segments([Segment(0, 0.0, 9.0, " Can I Yes.", words=bare)], audio)) == 1
    # a pause shorter than split_pause_s does not cut; the option must be positive
    assert len(snap_segments([seg], audio, split_pause_s=2.0)) == 1
    with pytest.raises(InvalidOptionError, match="split_pause_s"):
        DecodeOptions(split_pause_s=0.0)


class TwoSegmentWhisper(HelloWhisper):
    """generate() -> ``<|0.00|> hello<|5.00|><|5.00|> there<|9.00|>``: whole seconds, touching."""

    timestamp_begin = 0

    def generate(self, input_features: torch.Tensor, max_new_tokens: int, **kwargs: Any) -> torch.Tensor:
        tb = self.timestamp_begin
        hello = self.tok(" hello", add_special_tokens=False).input_ids
        there = self.tok(" there", add_special_tokens=False).input_ids
        ids = [tb, *hello, tb + 250, tb + 250, *there, tb + 450]
        return torch.tensor([ids] * int(input_features.shape[0]))


@pytest.mark.parametrize("on", [True, False])
def test_the_backend_applies_it_only_when_asked(on: bool) -> None:
    from whisper_tune.models.random_init import make_processor

    proc = make_processor()
    model = TwoSegmentWhisper(proc.tokenizer)
    b = HFBackend(model, proc, "two", BackendOptions(batch_size=2))
    model.timestamp_begin = b.timestamp_begin
    (t,) = b.transcribe_bank(
        FeatureBank([two_turns()], cache=False), DecodeOptions(timestamps=True, speech_times=on)
    )
    times = [(s.start, s.end) for s in t.segments]
    assert [s.text.strip() for s in t.segments] == ["hello", "there"]
    raw = [(0.0, 5.0), (5.0, 9.0)]
    want = [(round(a, 3), round(b, 3)) for a, b in snap_times(raw, speech_spans(two_turns()))]
    assert times == (want if on else raw) and want != raw
