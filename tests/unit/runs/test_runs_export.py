"""``export_best`` / ``whisper-tune best``: a self-contained best/, LoRA merged onto the run's base."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from wt_runs_testutil import fake_run

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.errors import UserError

SRC = Path(__file__).resolve().parents[3] / "src" / "whisper_tune"


def test_export_best_is_self_contained(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    run = fake_run(tmp_path, tiny_model_dir, {2: 0.9, 4: 0.2})
    assert main(["best", "r1", "--storage", str(tmp_path)]) == 0
    assert "checkpoint_000004" in capsys.readouterr().out
    best = run / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["eval_wer"] == 0.2 and metrics["source_checkpoint"].endswith("checkpoint_000004")
    assert (best / "whisper_tune_config.yaml").is_file() and (best / "generation_config.json").is_file()
    model = WhisperForConditionalGeneration.from_pretrained(best)
    processor = WhisperProcessor.from_pretrained(best)
    feats = processor.feature_extractor(
        [0.0] * 16000, sampling_rate=16000, return_tensors="pt"
    ).input_features
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=3)
    assert out.shape[0] == 1
    # a second export replaces best/ (no stale files, no .tmp left behind)
    (best / "stale.txt").write_text("x")
    runs.export_best(run)
    assert not (best / "stale.txt").exists() and not (run / ".best.tmp").exists()


def test_export_best_with_ct2(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = fake_run(tmp_path, tiny_model_dir, {2: 0.5})
    assert main(["best", str(run), "--ct2", "--quantization", "int8"]) == 0
    assert (run / "best" / "ct2" / "model.bin").is_file()
    assert "ctranslate2" in capsys.readouterr().out


def _lora_run(tmp_path: Path, base: Path) -> Path:
    """A run whose one checkpoint holds LoRA adapters only (as the lora strategy saves them)."""
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    run = tmp_path / "lora"
    hf = run / "checkpoint_000002" / "checkpoint"
    model = get_peft_model(
        WhisperForConditionalGeneration.from_pretrained(base),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]),
    )
    model.save_pretrained(hf)
    WhisperProcessor.from_pretrained(base).save_pretrained(hf)
    (hf / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (run / "checkpoint_000002" / "metrics.json").write_text(json.dumps({"step": 2, "eval_wer": 0.4}))
    return run


def test_export_lora_merges_onto_the_base_named_by_the_config(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import WhisperForConditionalGeneration

    run = _lora_run(tmp_path, tiny_model_dir)
    assert (run / "checkpoint_000002" / "checkpoint" / "adapter_config.json").is_file()
    with pytest.raises(UserError, match="no config.yaml naming the base model"):
        runs.export_best(run)
    best = runs.export_best(run, base_model=str(tiny_model_dir))  # given explicitly
    assert not (best / "adapter_config.json").exists()
    shutil.rmtree(best)
    (run / "config.yaml").write_text(f"model:\n  name: {tiny_model_dir}\n")  # plain YAML: no data section
    best = runs.export_best(run)
    merged = WhisperForConditionalGeneration.from_pretrained(best)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    (run / "config.yaml").write_text("model:\n  name: 3\n")
    with pytest.raises(UserError, match="model.name"):
        runs.export_best(run)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_storage_and_runs_keep_their_layers() -> None:
    """storage is the filesystem layer (no runs); runs (export included) needs nothing above models."""
    assert not {m for m in _imports(SRC / "storage.py") if m.startswith("whisper_tune.runs")}
    above = ("inference", "train", "evaluate", "cluster", "serve", "demo", "cli")
    for f in sorted((SRC / "runs").glob("*.py")):
        bad = {m for m in _imports(f) if m.split(".")[:2][-1] in above and m.startswith("whisper_tune.")}
        assert not bad, f"{f.name} imports {bad}"
    for f in sorted((SRC / "models").glob("*.py")):
        assert not {m for m in _imports(f) if m.startswith("whisper_tune.runs")}, f.name
