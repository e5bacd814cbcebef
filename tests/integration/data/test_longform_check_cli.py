"""``whisper-tune data check`` on a stereo 8 kHz call with per-channel SRT/VTT transcripts (real console script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration


def _tone(seconds: float, sr: int, hz: float, amp: float) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_data_check_reports_recordings_segments_windows_and_drops(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("whisper-tune")
    if not exe.exists():
        pytest.fail("whisper-tune console script is not installed next to the interpreter")
    sr = 8000
    sf.write(str(tmp_path / "call.flac"), np.stack([_tone(75, sr, 300, 0.3), _tone(75, sr, 500, 0.2)], 1), sr)
    agent = "".join(
        f"{i + 1}\n00:00:{5 * i:02d},000 --> 00:00:{5 * i + 3:02d},000\nAgent turn {i}.\n\n"
        for i in range(10)
    )
    agent += "11\n00:01:20,000 --> 00:01:22,000\nPast the end.\n\n12\n00:00:60 -> 1\nbroken\n\n"
    (tmp_path / "agent.srt").write_text(agent)
    (tmp_path / "customer.vtt").write_text(
        "WEBVTT\n\n00:03.000 --> 00:04.500\n<v Customer>Hello?\n\n00:04.000 --> 00:05.000\nOverlap.\n"
    )
    rows = [
        {"audio_filepath": "call.flac", "srt": "agent.srt", "channel": 0},
        {"audio_filepath": "call.flac", "vtt": "customer.vtt", "channel": 1},
    ]
    m = tmp_path / "calls.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run(
        [str(exe), "data", "check", str(m), "--channels", "split", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    lf = d["long_form"]
    assert (lf["recordings"], lf["segments_read"], lf["segments_used"]) == (1, 14, 11)
    assert lf["windows"] == d["usable"] == 3 and set(lf["per_channel"]) == {"0", "1"}
    assert {r: e["count"] for r, e in d["skipped"].items()} == {
        "past_end": 1,
        "malformed_cue": 1,
        "overlap": 1,
    }
    assert d["skipped"]["malformed_cue"]["examples"][0].startswith(f"{tmp_path / 'agent.srt'}:45 (cue 12): ")
    assert d["source_sample_rates"]["8000"]["items"] == 3
    md = subprocess.run(
        [str(exe), "data", "check", str(m), "--channels", "split"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert "## Long recordings" in md.stdout and "| 8000 | 3 |" in md.stdout
