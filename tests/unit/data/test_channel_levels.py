"""Per-channel frame levels of a recording (data.channel_levels): who is loud when, read in blocks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from whisper_tune.data.channel_levels import LEVEL_FRAME_S, channel_levels


def _stereo(seconds_each: float = 1.0, sr: int = 8000, tail: int = 37) -> np.ndarray:
    """A tone on the left, then the same on the right; ``tail`` samples more than whole frames."""
    n = int(sr * seconds_each)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
    left = np.concatenate([tone, np.zeros(n + tail, np.float32)])
    right = np.concatenate([np.zeros(n, np.float32), tone, np.full(tail, 0.3, np.float32)])
    return np.stack([left, right], axis=1)


def test_levels_follow_the_loud_channel_frame_by_frame(tmp_path: Path) -> None:
    p = tmp_path / "call.wav"
    sf.write(p, _stereo(), 8000)
    lv = channel_levels(p)
    assert lv is not None and lv.dtype == np.float32
    per_s = round(1 / LEVEL_FRAME_S)
    assert lv.shape == (2, 2 * per_s + 1)  # the 37 samples past the last whole frame: one more
    assert (lv[0, :per_s] > 0.04).all() and (lv[1, :per_s] < 1e-6).all()
    assert (lv[1, per_s : 2 * per_s] > 0.04).all() and (lv[0, per_s:] < 1e-6).all()
    assert lv[1, -1] > 0.08  # the tail frame: a constant 0.3, power 0.09


def test_bytes_read_like_the_file_and_blocks_do_not_change_the_result(tmp_path: Path) -> None:
    p = tmp_path / "call.flac"
    sf.write(p, _stereo(seconds_each=300.0, sr=8000), 8000)  # 10 min: several blocks
    a = channel_levels(p)
    b = channel_levels(p.read_bytes())
    assert a is not None and b is not None and a.shape == b.shape == (2, 30001)
    np.testing.assert_allclose(a, b)
    assert (a[0, :15000] > 0.04).all() and (a[1, 15000:30000] > 0.04).all()


def test_mono_and_unreadable_input_have_no_levels(tmp_path: Path) -> None:
    mono = tmp_path / "mono.wav"
    sf.write(mono, np.zeros(8000, np.float32), 8000)
    assert channel_levels(mono) is None
    assert channel_levels(b"not audio at all") is None
    assert channel_levels(tmp_path / "missing.wav") is None
    buf = io.BytesIO()
    sf.write(buf, np.zeros((0, 2), np.float32), 8000, format="WAV")
    assert channel_levels(buf.getvalue()) is None  # a stereo file without samples
