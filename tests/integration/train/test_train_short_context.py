"""A short-encoder-context training run on CPU (``train.encoder_frames``) and its export.

Why: training at a shortened context changes the model's config (``max_source_positions``)
and drops clips that do not fit; ``best/`` must still load in anyone's plain Whisper
pipeline (``from_pretrained`` + ``WhisperProcessor`` padding to 30 s + ``generate()``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from wt_train_testlib import job_dict

from whisper_tune import runs
from whisper_tune.cli import main

pytestmark = pytest.mark.integration


def test_short_context_run_exports_a_30s_model(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor
    from transformers.models.whisper.modeling_whisper import sinusoids

    data = job_dict(
        tiny_model_dir,
        tiny_corpus,
        tmp_path / "runs",
        # 150 frames - 64 margin: clips over 0.86 s (the 1.0 s ones) cannot fit and are rejected.
        train={"encoder_frames": 150, "group_by_length": True, "compile": "auto"},
    )
    cfg = tmp_path / "short.yaml"
    cfg.write_text("# whisper-tune train --config short.yaml --no-ray\n" + yaml.safe_dump(data))
    assert main(["train", "--config", str(cfg), "--no-ray"]) == 0
    run = tmp_path / "runs" / "t"

    report = json.loads((run / "data_report.json").read_text())
    assert report["usable"] == 6 and report["skipped"]["too_long"]["count"] == 2, report["skipped"]
    plan = json.loads((run / "fast_path.json").read_text())
    assert plan["n_frames"] == 150 and plan["group_by_length"] is True and plan["compile_scope"] == "none"
    assert plan["throughput"]["measured_steps"] == 2 and plan["throughput"]["wall_samples_per_s"] > 0
    ckpt = runs.RunDir(run).best_checkpoint().path / "checkpoint"
    assert json.loads((ckpt / "config.json").read_text())["max_source_positions"] == 75

    best = run / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["train_encoder_frames"] == 150 and metrics["export_encoder_frames"] == 3000
    model = WhisperForConditionalGeneration.from_pretrained(best)
    processor = WhisperProcessor.from_pretrained(best)
    assert model.config.max_source_positions == 1500
    table = model.get_encoder().embed_positions.weight.detach()
    trained = WhisperForConditionalGeneration.from_pretrained(ckpt).get_encoder().embed_positions.weight
    assert torch.equal(table[:75], trained.detach())  # the rows it trained with, unchanged
    torch.testing.assert_close(table, sinusoids(1500, table.shape[1]))
    feats = processor.feature_extractor([0.1] * 8000, sampling_rate=16000, return_tensors="pt").input_features
    assert feats.shape[-1] == 3000
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=4)
    assert out.shape[0] == 1 and out.shape[1] >= 2
