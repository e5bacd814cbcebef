"""Real voices: one short synthetic call through the CLI (Piper/espeak-ng, phone channel, stereo).

Small on purpose (a ~25 s call): the layout and determinism of longer calls are checked with a
fake engine in tests/unit/synth/test_synth_calls.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.data.synth.cli import main

pytestmark = pytest.mark.integration


def _run(out: Path) -> dict[str, str]:
    rc = main(["--calls", "1", "--call-minutes", "0.4", "--out", str(out), "--workers", "1", "--seed", "5"])
    assert rc == 0
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_one_call_end_to_end_and_deterministic(tmp_path: Path) -> None:
    first = _run(tmp_path / "a")
    out = tmp_path / "a"
    assert set(first) >= {"audio/call_000000.wav", "audio/call_000000.mix.wav", "srt/call_000000.srt",
                          "segments.jsonl", "longform.jsonl", "calls.json"}  # fmt: skip
    stereo, sr = sf.read(out / "audio" / "call_000000.wav")
    assert sr == 8000 and stereo.shape[1] == 2
    segs = [json.loads(x) for x in (out / "segments.jsonl").read_text().splitlines()]
    assert len(segs) >= 8 and segs[0]["speaker"] == "agent" and segs[1]["speaker"] == "customer"
    for a, b in zip(segs, segs[1:], strict=False):
        assert b["start"] > a["end"]  # overlap-free
    for s in segs:  # speech on the speaker's channel, (almost) silence on the other
        i0, i1 = int(s["start"] * sr), int(s["end"] * sr)
        energy = np.sqrt((stereo[i0:i1] ** 2).mean(axis=0))
        assert energy[s["channel"]] > 5 * energy[1 - s["channel"]], s
    spec = np.abs(np.fft.rfft(stereo[:, 0]))
    freqs = np.fft.rfftfreq(len(stereo), 1 / sr)
    assert spec[freqs > 3600].sum() < 0.02 * spec.sum()  # telephone band
    again = _run(tmp_path / "b")
    assert {k: v for k, v in again.items() if k != "calls.json"} == {
        k: v for k, v in first.items() if k != "calls.json"
    }  # same seed, same bytes (calls.json also holds the render times)
