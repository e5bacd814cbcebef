"""Clips joined into long recordings keep every clip, with exact reference segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.joined import join_clips
from whisper_tune.errors import DataError
from whisper_tune.evaluate.longform import reference_segments


def _clips(tmp_path: Path, seconds: list[float], bad: int | None = None) -> Path:
    rows = []
    for i, s in enumerate(seconds):
        p = tmp_path / f"c{i}.wav"
        if i == bad:
            p.write_bytes(b"not audio")
        else:
            sf.write(p, (0.1 * np.sin(np.arange(int(16000 * s)) / 9.0)).astype(np.float32), 16000)
        rows.append({"audio_filepath": str(p), "text": f"clip {i}", "duration": s})
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return m


def test_join_makes_recordings_of_at_least_the_length_with_exact_segments(tmp_path: Path) -> None:
    res = join_clips(_clips(tmp_path, [4.0] * 10), tmp_path / "out", seconds=12.0, seed=3)
    rows = [json.loads(x) for x in res.manifest.read_text().splitlines()]
    # 3 clips + pauses reach 12 s; the 10th clip alone is too short and joins the last recording
    assert res.clips == 10 and res.recordings == len(rows) == 3
    assert [len(r["segments"]) for r in rows] == [3, 3, 4]
    assert all(r["duration"] >= 12.0 for r in rows)
    seen = [seg["text"] for r in rows for seg in r["segments"]]
    assert sorted(seen) == sorted(f"clip {i}" for i in range(10))  # every clip, once
    for r in rows:
        audio, sr = sf.read(r["audio_filepath"])
        assert sr == 16000 and abs(audio.size / sr - r["duration"]) < 1e-3
        spans = reference_segments(r)
        assert spans is not None and all(abs((e - s) - 4.0) < 1e-3 for s, e in spans)
        assert all(
            b[0] - a[1] >= 0.39 for a, b in zip(spans, spans[1:], strict=False)
        )  # a pause between clips
        assert r["text"] == " ".join(seg["text"] for seg in r["segments"])
        start = int(spans[1][0] * sr)
        assert np.abs(audio[start - 800 : start - 10]).max() < 1e-4  # silence before the 2nd clip


def test_join_counts_an_unreadable_clip_and_keeps_the_rest(tmp_path: Path) -> None:
    res = join_clips(_clips(tmp_path, [3.0, 3.0, 3.0], bad=1), tmp_path / "out", seconds=60.0)
    assert res.recordings == 1 and res.clips == 2
    assert len(res.skipped) == 1 and "c1" in res.skipped[0], res.skipped
    with pytest.raises(DataError, match="seconds"):
        join_clips(_clips(tmp_path, [3.0]), tmp_path / "o2", seconds=0)


def test_reference_segments_mark_the_speech_not_the_clip_s_own_silence(tmp_path: Path) -> None:
    sr = 16000
    tone = (0.1 * np.sin(np.arange(3 * sr) / 9.0)).astype(np.float32)
    clip = np.concatenate([np.zeros(sr // 2, np.float32), tone, np.zeros(int(0.3 * sr), np.float32)])
    rows = []
    for i in range(2):
        p = tmp_path / f"s{i}.wav"
        sf.write(p, clip, sr)
        rows.append({"audio_filepath": str(p), "text": f"clip {i}", "duration": 3.8})
    m = tmp_path / "m.jsonl"
    m.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = join_clips(m, tmp_path / "out", seconds=5.0, seed=0, shuffle=False)
    (row,) = [json.loads(x) for x in res.manifest.read_text().splitlines()]
    first, second = row["segments"]
    assert first["clip_start"] == 0.0 and first["clip_end"] == pytest.approx(3.8, abs=1e-3)
    assert first["start"] == pytest.approx(0.48, abs=0.011) and first["end"] == pytest.approx(3.53, abs=0.011)
    offset = second["clip_start"]
    assert offset >= 3.8 + 0.39  # the drawn pause
    assert second["start"] == pytest.approx(offset + 0.48, abs=0.011)
    assert sf.info(row["audio_filepath"]).duration == pytest.approx(row["duration"], abs=1e-3)  # audio whole
