"""The export rule on the driver: admissible checkpoints pass, otherwise a WiSE-FT mix is exported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from whisper_tune.models.random_init import save_random_whisper
from whisper_tune.train.config import JobConfig
from whisper_tune.train.finalize import finalize_export
from whisper_tune.train.guard_select import GuardBound, choose_alpha


def _manifest(root: Path, name: str, n: int = 2) -> Path:
    import soundfile as sf

    rows = []
    for i in range(n):
        t = np.arange(8000) / 16000
        path = root / name / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.3 * np.sin(2 * np.pi * (220 + 50 * i) * t)).astype(np.float32), 16000)
        rows.append({"audio_filepath": str(path), "text": "hello there", "duration": 0.5})
    out = root / f"{name}.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _job(tmp_path: Path, base: Path, guard: str, alphas: list[float]) -> JobConfig:
    data = _manifest(tmp_path, "eval")
    return JobConfig.from_mapping(
        {
            "model": {"name": str(base)},
            "data": {"train": str(data), "eval": str(data), "guard": guard},
            "run": {"storage_path": str(tmp_path / "runs"), "interpolation_alphas": alphas},
        }
    )


def _base_transcribed_guard(tmp_path: Path, base: Path) -> Path:
    """A guard whose references are the base model's own transcripts, so only the base scores 0 %."""
    from whisper_tune.data import load_audio
    from whisper_tune.inference import FeatureBank, HFBackend, transcribe_audios
    from whisper_tune.models import load_model

    raw = _manifest(tmp_path, "guard_audio", n=3)
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    model, processor = load_model(str(base))
    bank = FeatureBank([load_audio(r["audio_filepath"]) for r in rows])
    texts = [t.text for t in transcribe_audios(HFBackend(model, processor, "base"), bank)]
    for r, text in zip(rows, texts, strict=True):
        r["text"] = text.strip() or "silence"
    out = tmp_path / "guard_by_base.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.fixture()
def best(tmp_path: Path, tiny_model_dir: Path) -> Path:
    out = tmp_path / "run" / "best"
    save_random_whisper(out, shape="test", seed=7)
    (out / "metrics.json").write_text(json.dumps({"step": 4, "eval_wer": 0.5}))
    return out


def test_admissible_checkpoint_is_exported_as_is(tmp_path: Path, tiny_model_dir: Path) -> None:
    # the export is the base model itself: its guard WER equals the base's, within the bound
    best = tmp_path / "run" / "best"
    shutil.copytree(tiny_model_dir, best)
    cfg = _job(tmp_path, tiny_model_dir, str(_manifest(tmp_path, "guard")), [0.5])
    before = (best / "model.safetensors").read_bytes()
    metrics = {"step": 4, "eval_wer": 0.5, "guard_wer": 0.2, "base_guard_wer": 0.2, "guard_ok": 1.0}
    sel = finalize_export(cfg, tmp_path / "run", best, metrics)
    assert sel.guard_wer == sel.base_guard_wer and "verified on the exported weights" in sel.rule
    assert sel.alpha == 1.0 and sel.rule.startswith("guard-admissible") and sel.warning is None
    assert (best / "model.safetensors").read_bytes() == before
    recorded = json.loads((best / "metrics.json").read_text())
    assert recorded["selection"]["rule"] == sel.rule and recorded["interpolation_alpha"] == 1.0
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["selection"]["alpha"] == 1.0


def test_no_admissible_checkpoint_exports_a_mix_with_the_base(
    tmp_path: Path, tiny_model_dir: Path, best: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = _base_transcribed_guard(tmp_path, tiny_model_dir)  # the base scores 0 % on it
    cfg = _job(tmp_path, tiny_model_dir, str(guard), [0.75, 0.5])
    before = (best / "model.safetensors").read_bytes()
    metrics = {"step": 4, "eval_wer": 0.5, "guard_wer": 0.9, "base_guard_wer": 0.2, "guard_ok": 0.0}
    with caplog.at_level("WARNING"):
        sel = finalize_export(cfg, tmp_path / "run", best, metrics)
    assert sel.base_guard_wer == 0.0
    assert "NO checkpoint kept real-speech" in caplog.text
    assert sel.warning and "WiSE-FT" in sel.warning
    assert sel.alpha in (0.75, 0.5, 0.0) and sel.base_guard_wer is not None
    assert [t.alpha for t in sel.trials][: len(sel.trials)] == [0.75, 0.5][: len(sel.trials)]
    assert (best / "model.safetensors").read_bytes() != before  # the mix (or the base) replaced the weights
    recorded = json.loads((best / "metrics.json").read_text())
    assert recorded["interpolation_alpha"] == sel.alpha and recorded["selection"]["trials"]


def test_without_a_guard_the_rule_says_so(tmp_path: Path, tiny_model_dir: Path, best: Path) -> None:
    cfg = _job(tmp_path, tiny_model_dir, "none", [0.5])
    sel = finalize_export(cfg, tmp_path / "run", best, {"step": 4, "eval_wer": 0.5})
    assert "no real-speech guard" in sel.rule and sel.alpha == 1.0


def test_choose_alpha_takes_the_largest_admissible_and_falls_back_to_the_base() -> None:
    curve = {0.75: (0.10, 0.30), 0.5: (0.15, 0.20), 0.25: (0.20, 0.18)}
    evaluated: list[float] = []

    def evaluate(a: float) -> float:
        evaluated.append(a)
        return curve[a][0]

    alpha, trials = choose_alpha(lambda a: curve[a][1], evaluate, GuardBound(0.2), alphas=[0.75, 0.5, 0.25])
    assert alpha == 0.5 and [t.admissible for t in trials] == [False, True]
    assert evaluated == [0.5]  # the mix over the guard limit is not scored on the eval set
    assert [t.eval_wer for t in trials] == [None, 0.15]
    alpha, trials = choose_alpha(lambda a: 0.9, evaluate, GuardBound(0.2), alphas=[0.75, 0.5])
    assert alpha == 0.0 and len(trials) == 2 and evaluated == [0.5]
    with pytest.raises(ValueError, match="alphas"):
        choose_alpha(lambda a: 0.1, evaluate, GuardBound(0.2), alphas=[1.0])
