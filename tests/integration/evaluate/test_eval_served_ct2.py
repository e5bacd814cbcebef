"""``compare --backend ct2`` with the real tiny.en: the int8 CTranslate2 export that ``serve
--backend ct2`` runs is what is scored (same transcripts as the serving backend, no float32
conversion), and it transcribes espeak-ng speech about as well as the base."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from whisper_tune.cli import main

pytestmark = pytest.mark.integration

SENTENCES = ["Please freeze my debit card, it was stolen.", "Can you tell me my checking account balance?"]


def test_compare_backend_ct2_scores_the_served_int8_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    from whisper_tune.data import load_audio
    from whisper_tune.inference import BackendOptions, FeatureBank, load_backend, transcribe_audios
    from whisper_tune.models import ensure_hf_dir, export_ct2
    from whisper_tune.models.cache import hf_cache_dir, path_key

    rows = []
    for i, text in enumerate(SENTENCES):
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-w", str(tmp_path / f"c{i}.wav"), text], check=True, timeout=60
        )
        rows.append({"audio_filepath": f"c{i}.wav", "text": text, "id": f"c{i}"})
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    served = Path(export_ct2(ensure_hf_dir("tiny.en"), str(tmp_path / "best" / "ct2"), quantization="int8"))

    out = tmp_path / "cmp"
    args = [
        "compare",
        "--base",
        "tiny.en",
        "--tuned",
        str(served),
        "--data",
        str(manifest),
        "--out",
        str(out),
    ]
    assert (
        main([*args, "--backend", "ct2", "--device", "cpu", "--guard", "none", "--prompt-baseline", "none"])
        == 0
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["tuned"]["artifact"] == str(served)
    assert (rep["tuned"]["backend"], rep["tuned"]["compute_type"], rep["tuned"]["device"]) == (
        "ct2",
        "int8",
        "cpu",
    )
    assert rep["base"]["backend"] == "ct2" and rep["tuned"]["wer"] < 0.35, rep["tuned"]
    assert not hf_cache_dir(path_key(served)).exists()  # the export was never converted back
    # the hypotheses are the serving backend's own transcripts of the same audio
    backend = load_backend(str(served), "ct2", BackendOptions(device="cpu", compute_type="auto"))
    hyps = [
        t.text
        for t in transcribe_audios(
            backend, FeatureBank([load_audio(tmp_path / r["audio_filepath"]) for r in rows])
        )
    ]
    preds = [json.loads(x)["hyp"] for x in (out / "tuned" / "predictions.jsonl").read_text().splitlines()]
    assert preds == hyps
