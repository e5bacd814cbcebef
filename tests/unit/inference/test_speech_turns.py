"""The turn rule of inference.speech_times: on a multichannel call, a change of channel is a turn."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_tune.data.channel_levels import LEVEL_FRAME_S
from whisper_tune.inference.speech_times import snap_segments, speaker_labels
from whisper_tune.inference.types import Segment, Word

SPANS = [(0.5, 3.0), (3.25, 6.0)]  # two stretches of speech, a 0.25 s pause (shorter than split_pause_s)


def levels(change_s: float = 3.1, seconds: float = 6.5) -> np.ndarray:
    """Channel 0 loud before ``change_s``, channel 1 after (with a faint echo of the other)."""
    n = round(seconds / LEVEL_FRAME_S)
    k = round(change_s / LEVEL_FRAME_S)
    lv = np.full((2, n), 1e-4, np.float32)
    lv[0, :k], lv[1, k:] = 0.05, 0.05
    return lv


def _audio() -> np.ndarray:
    return np.zeros(16000 * 7, np.float32)  # not listened to: the spans are given


def test_speaker_labels_name_the_loud_channel_of_each_span() -> None:
    assert speaker_labels(SPANS, levels()) == [0, 1]
    assert speaker_labels(SPANS, None) is None
    assert speaker_labels(SPANS, levels()[:1]) is None  # one channel: nothing to tell apart
    assert speaker_labels([(9.0, 9.5)], levels()) == [1]  # past the levels' end: the last frame


def test_a_change_of_channel_cuts_a_segment_at_a_short_pause() -> None:
    words = [
        Word(" Hi", 0.5, 1.5, 0.9, [1]),
        Word(" there.", 1.5, 2.9, 0.9, [2, 3]),
        Word(" Hello.", 3.3, 5.9, 0.9, [4]),
    ]
    seg = Segment(0, 0.0, 6.5, " Hi there. Hello.", [1, 2, 3, 4], words=words)
    mix = snap_segments([seg], _audio(), spans=SPANS)
    assert [s.text for s in mix] == [" Hi there. Hello."]  # the pause alone is too short to cut
    out = snap_segments([seg], _audio(), spans=SPANS, levels=levels())
    assert [s.text for s in out] == [" Hi there.", " Hello."] and [s.tokens for s in out] == [[1, 2, 3], [4]]
    assert [(s.start, s.end) for s in out] == [(0.5, 3.0), (3.25, 6.0)]


def test_a_segment_is_trimmed_onto_the_speech_of_its_own_channel() -> None:
    # the model ended the first turn early and started the second over the end of the first
    a = Segment(0, 0.0, 1.0, " Okay.", [1], words=[Word(" Okay.", 0.5, 0.9, 0.9, [1])])
    b = Segment(1, 1.0, 6.0, " Hello.", [2], words=[Word(" Hello.", 3.4, 5.8, 0.9, [2])])
    mix = snap_segments([a, b], _audio(), spans=SPANS)
    assert mix[1].start == 1.0  # inside the first stretch, far from its pause: kept
    out = snap_segments([a, b], _audio(), spans=SPANS, levels=levels())
    assert (out[1].start, out[1].end) == (3.25, 6.0) and out[1].text == " Hello."
    # no words: the channel with the most speech inside the segment is its speaker
    bare = Segment(1, 1.0, 6.0, " Hello.", [2])  # 2.0 s of channel 0, 2.75 s of channel 1
    assert snap_segments([a, bare], _audio(), spans=SPANS, levels=levels())[1].start == 3.25
    short = Segment(1, 1.0, 4.0, " Fine.", [2])  # 2.0 s of channel 0, 0.75 s of channel 1: channel 0's
    (turn,) = snap_segments([a, short], _audio(), spans=SPANS, levels=levels())  # one turn: joined
    assert (turn.start, turn.end, turn.text, turn.tokens) == (0.5, 3.0, " Okay. Fine.", [1, 2])


def test_consecutive_segments_of_one_side_are_one_turn() -> None:
    spans = [(0.5, 2.0), (2.3, 4.0), (4.3, 6.0), (7.0, 8.0)]  # 0, 0, 1, then 1 again after 1 s
    lv = np.full((2, 450), 1e-4, np.float32)
    lv[0, : round(4.15 / LEVEL_FRAME_S)] = 0.05
    lv[1, round(4.15 / LEVEL_FRAME_S) :] = 0.05

    def seg(i: int, a: float, b: float, text: str, **kw: float) -> Segment:
        return Segment(i, a, b, text, [i], words=[Word(text, a, b, 0.9, [i])], **kw)

    segs = [
        seg(0, 0.5, 2.0, " Hello.", avg_logprob=-0.2, seek=0.0),
        seg(1, 2.3, 4.0, " How can I help?", avg_logprob=-0.5, seek=0.0),
        seg(2, 4.3, 6.0, " My card."),
        seg(3, 7.0, 8.0, " It was stolen."),  # the same side, but after a 1 s pause: its own segment
    ]
    out = snap_segments(segs, np.zeros(16000 * 9, np.float32), spans=spans, levels=lv)
    assert [(s.id, s.start, s.end, s.text) for s in out] == [
        (0, 0.5, 4.0, " Hello. How can I help?"),
        (1, 4.3, 6.0, " My card."),
        (2, 7.0, 8.0, " It was stolen."),
    ]
    assert out[0].tokens == [0, 1] and [w.word for w in out[0].words or []] == [" Hello.", " How can I help?"]
    assert out[0].avg_logprob == -0.5  # the less confident window's statistics
    # without levels (a mono recording) nothing is joined
    assert len(snap_segments(segs, np.zeros(16000 * 9, np.float32), spans=spans)) == 4


def test_a_feature_bank_holds_one_level_array_or_none_per_clip() -> None:
    from whisper_tune.inference import FeatureBank

    clips = [np.zeros(1600, np.float32), np.zeros(800, np.float32)]
    assert FeatureBank(clips).levels == [None, None]
    assert FeatureBank(clips, levels=[levels(), None]).levels[0] is not None
    with pytest.raises(ValueError, match="2 clips but 1 channel levels"):
        FeatureBank(clips, levels=[None])
