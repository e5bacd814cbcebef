"""Long-form evaluation on real weights: tiny.en on a synthetic one-minute call, both modes,
through ``whisper-tune evaluate --longform ... --redact`` (files masked, scores on raw text)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import soundfile as sf

from whisper_tune.cli import main
from whisper_tune.data.synth.calls import CallsConfig, synthesize_calls

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calls")
    synthesize_calls(CallsConfig(out=str(out), calls=1, seed=2, minutes=(1.0, 1.0), workers=1))
    return out / "longform.jsonl"


@pytest.fixture(scope="module")
def first_turn(call: Path) -> Path:
    """The call's first turn as a short clip: the clip-level --data (keeps the test's decoding small)."""
    row = json.loads(call.read_text().splitlines()[0])
    audio, sr = sf.read(call.parent / row["audio_filepath"])
    seg = row["segments"][0]
    sf.write(call.parent / "turn0.wav", audio[int(seg["start"] * sr) : int(seg["end"] * sr) + sr // 5], sr)
    clip = call.parent / "turn0.jsonl"
    clip.write_text(json.dumps({"audio_filepath": "turn0.wav", "text": seg["text"]}) + "\n")
    return clip


def test_evaluate_longform_sequential_and_chunked_redacted(
    call: Path, first_turn: Path, tmp_path: Path
) -> None:
    from whisper_tune.models import ensure_hf_dir

    model = str(ensure_hf_dir("tiny.en"))
    out = tmp_path / "eval"
    rc = main(["evaluate", "--model", model, "--data", str(first_turn), "--out", str(out), "--device", "cpu",
               "--longform", str(call), "--redact"])  # fmt: skip
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    lf = metrics["longform"]
    assert lf["recordings"] == 1 and lf["audio_seconds"] > 55
    for mode in ("sequential", "chunked"):
        m = lf["modes"][mode]
        assert m["wer"] < 0.5, (mode, m["wer"])  # tiny.en transcribes the synthetic call
        assert m["boundaries"]["ref_boundaries"] >= 16
        # the call is stereo: speech times with the turn rule (base tiny.en: 89-99 % on 8 such calls)
        assert m["boundaries"]["accuracy"] >= 0.8, (mode, m["boundaries"])
        segs = m["recordings"][0]["segments"]
        assert len(segs) >= 5 and all(s["start"] <= s["end"] for s in segs)
        assert max(s["end"] for s in segs) > 45  # timestamps run through the whole call
    ref = json.loads(call.read_text().splitlines()[0])["text"]
    secrets = re.findall(r"[\w.]+@[\w.]+|\d{3}-\d{3}-\d{4}|\b\d{7,}\b", ref)
    for name in ("predictions.jsonl", "metrics.json", "report.md"):
        text = (out / name).read_text()
        assert "## Long-form" in text or name != "report.md"
        for s in secrets:
            assert s not in text, (name, s)
