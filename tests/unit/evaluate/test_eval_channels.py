"""Long-form rows that name a channel of a two-channel call are evaluated on that side alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.errors import DataError
from whisper_tune.evaluate.pipeline import load_eval_items


def _call(tmp_path: Path) -> Path:
    """8 kHz stereo: a tone on the left for the first second, on the right for the next."""
    sr = 8000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    left = np.concatenate([tone, np.zeros(sr, np.float32)])
    right = np.concatenate([np.zeros(sr, np.float32), tone])
    p = tmp_path / "call.wav"
    sf.write(p, np.stack([left, right], axis=1), sr)
    return p


def _rows(tmp_path: Path, rows: list[dict]) -> Path:
    m = tmp_path / "lf.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return m


def test_each_channel_is_read_alone_at_16k_and_a_label_is_not_an_index(tmp_path: Path) -> None:
    call = str(_call(tmp_path))
    rows = [
        {"audio_filepath": call, "text": "agent", "channel": 0},
        {"audio_filepath": call, "text": "customer", "channel": 1},
        {"audio_filepath": call, "text": "both", "channel": "phone"},  # a channel type: the mix
    ]
    items, skipped = load_eval_items(_rows(tmp_path, rows))
    assert not skipped and [it.text for it in items] == ["agent", "customer", "both"]
    assert [it.source for it in items] == [call, call, call]
    left, right, mix = (it.audio for it in items)
    assert left.size == right.size == mix.size == 32000  # 2 s at 16 kHz
    assert np.abs(left[:15000]).max() > 0.2 and np.abs(left[17000:]).max() < 0.01
    assert np.abs(right[:15000]).max() < 0.01 and np.abs(right[17000:]).max() > 0.2
    assert np.abs(mix[:15000]).max() > 0.1 and np.abs(mix[17000:]).max() > 0.1


def test_a_missing_channel_or_a_mono_file_is_a_named_skip(tmp_path: Path) -> None:
    call = str(_call(tmp_path))
    mono = tmp_path / "mono.wav"
    sf.write(mono, np.zeros(8000, np.float32), 8000)
    rows = [
        {"audio_filepath": call, "text": "ok", "channel": 1},
        {"audio_filepath": call, "text": "none", "channel": 2},
        {"audio_filepath": str(mono), "text": "mono", "channel": 0},
    ]
    items, skipped = load_eval_items(_rows(tmp_path, rows))
    assert [it.text for it in items] == ["ok"]
    assert len(skipped) == 2 and all("channel" in s["message"] for s in skipped)
    assert "lf.jsonl:2" in skipped[0]["origin"] and "has 2 channel(s)" in skipped[0]["message"]
    assert "mono.wav has 1 channel(s)" in skipped[1]["message"]
    with pytest.raises(DataError, match="no usable"):
        load_eval_items(_rows(tmp_path, rows[1:]))


def test_long_form_times_a_side_on_its_channel_s_share_of_the_mix_s_speech(tmp_path: Path) -> None:
    from whisper_tune.evaluate.longform import _recording_speech
    from wt_audio_testutil import silence, voiced

    agent = np.concatenate([silence(0.5), voiced(4.0), silence(5.5)])  # speech 0.5-4.5 s
    customer = np.concatenate([silence(5.9), voiced(3.0, 1), silence(1.1)])  # speech 5.9-8.9 s
    call = tmp_path / "call.wav"  # float WAV: the mix (the mean) at the buzz's own level
    sf.write(call, np.stack([2 * agent, 2 * customer + 0.2 * agent], axis=1), 16000, subtype="FLOAT")
    rows = [
        {"audio_filepath": str(call), "text": "agent", "channel": 0},
        {"audio_filepath": str(call), "text": "customer", "channel": 1},
        {"audio_filepath": str(call), "text": "both"},
    ]
    items, _ = load_eval_items(_rows(tmp_path, rows))
    spans, levels = _recording_speech(items)
    left, right, mix = spans
    assert left and right and all(0.3 <= a < b <= 4.7 for a, b in left)
    assert all(5.7 <= a < b <= 9.1 for a, b in right)  # the agent's echo on the right is the agent's
    assert sorted(left + right) == mix  # the mix's spans, shared out by channel
    assert levels[0] is None and levels[1] is None and levels[2] is not None and levels[2].shape[0] == 2
