"""Real training runs on CPU with the toy random Whisper and a handful of synthetic clips.

Ray is started once for the module (2 CPUs); each test asserts on the files a run
leaves behind: checkpoints with metrics, best/ (loads and generates), config.yaml,
TensorBoard events, resume continuing the global step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from wt_train_testlib import job_dict

from whisper_tune import runs
from whisper_tune.cli import main
from whisper_tune.train.config import JobConfig
from whisper_tune.train.launch import launch

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def _generates(model_dir: Path) -> list[int]:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(model_dir)
    processor = WhisperProcessor.from_pretrained(model_dir)
    feats = processor.feature_extractor([0.1] * 8000, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        out = model.generate(feats, max_new_tokens=4)
    return [int(x) for x in out[0]]


def _write_config(path: Path, data: dict) -> Path:
    path.write_text("# whisper-tune train --config " + path.name + "\n" + yaml.safe_dump(data))
    return path


def _assert_encoder_frozen(base_dir: Path, tuned_dir: Path, frozen: bool) -> None:
    import torch
    from safetensors.torch import load_file

    base = load_file(str(base_dir / "model.safetensors"))
    tuned = load_file(str(tuned_dir / "model.safetensors"))
    enc_key = "model.encoder.layers.0.fc1.weight"
    dec_key = "model.decoder.layers.0.fc1.weight"
    assert torch.equal(tuned[enc_key], base[enc_key]) == frozen
    assert not torch.equal(tuned[dec_key], base[dec_key])  # the decoder always trains


def test_two_ray_workers_end_to_end_then_resume(
    ray_local: None, tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    """The demo's path: 2 Ray workers, frozen encoder run once (cached), decoder trained."""
    data = job_dict(
        tiny_model_dir,
        tiny_corpus,
        tmp_path / "runs",
        scaling={"num_workers": 2},
        train={"strategy": "decoder", "cache_encoder_outputs": True},
    )
    out = launch(JobConfig.from_mapping(data))
    run = out.run_dir
    assert run == tmp_path / "runs" / "t" and not out.resumed and out.global_step == 4
    ckpts = runs.RunDir(run).checkpoints()
    assert [c.step for c in ckpts] == [2, 4]  # save_steps=2, num_to_keep=2
    for c in ckpts:
        assert c.eval_wer is not None and "eval_wer_ortho" in c.metrics
        assert (c.path / "checkpoint" / "trainer_state.json").is_file()
    # Ray's best (Result.best_checkpoints, min eval_wer) agrees with the run-dir view
    assert out.best_checkpoint == runs.RunDir(run).best_checkpoint().path
    assert out.best_eval_wer == min(c.eval_wer for c in ckpts if c.eval_wer is not None)
    assert yaml.safe_load((run / "config.yaml").read_text())["scaling"]["num_workers"] == 2
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "data_report.json").is_file() and (run / "data_report.md").is_file()
    # both workers encoded their shard into the shared cache
    assert len(list((run / "encoder_cache" / "train").glob("*.npy"))) == 8
    assert json.loads((run / "best" / "metrics.json").read_text())["eval_wer"] == out.best_eval_wer
    _assert_encoder_frozen(tiny_model_dir, run / "best", frozen=True)
    assert _generates(run / "best")
    assert runs.read_status(run)["status"] == "finished"
    # the guard was scored (the eval clips stand in for it) and the export rule is on record
    finished = runs.read_status(run)
    assert isinstance(finished["base_guard_wer"], float) and isinstance(finished["best_guard_wer"], float)
    assert json.loads((run / "best" / "metrics.json").read_text())["selection"]["rule"]

    # same name again, longer: resumes from the checkpoint (through the CLI this time)
    cfg_path = _write_config(tmp_path / "job.yaml", data)
    assert main(["train", "--config", str(cfg_path), "train.max_steps=6"]) == 0
    status = runs.read_status(run)
    assert status["resumed"] is True and status["global_step"] == 6
    steps = [c.step for c in runs.RunDir(run).checkpoints()]
    assert 6 in steps and max(steps) == 6
    state = json.loads((run / "checkpoint_000006" / "checkpoint" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert [h["step"] for h in state["log_history"] if "loss" in h][:1] == [1]  # history kept from run 1
    assert list(run.glob("config.*.yaml"))  # the first run's config is kept, not overwritten


def test_no_ray_full_fine_tune(tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]) -> None:
    data = job_dict(tiny_model_dir, tiny_corpus, tmp_path / "runs", scaling={"num_workers": 2})
    cfg_path = _write_config(tmp_path / "full.yaml", data)
    assert main(["train", "--config", str(cfg_path), "--no-ray"]) == 0  # 1 in-process worker
    run = tmp_path / "runs" / "t"
    best = runs.RunDir(run).best_checkpoint()
    assert best.eval_wer is not None and best.step == 4
    assert [c.step for c in runs.RunDir(run).checkpoints()] == [2, 4]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    _assert_encoder_frozen(tiny_model_dir, run / "best", frozen=False)
    assert _generates(run / "best")


def test_no_ray_lora_is_merged_on_export(
    tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    data = job_dict(
        tiny_model_dir,
        tiny_corpus,
        tmp_path / "runs",
        train={"strategy": "lora", "lora": {"r": 4, "alpha": 8}},
    )
    out = launch(JobConfig.from_mapping(data), use_ray=False)
    assert (out.best_checkpoint / "checkpoint" / "adapter_config.json").is_file()
    best = out.best_dir
    assert best is not None and not (best / "adapter_config.json").exists()
    assert _generates(best)


def test_zero2_two_ray_workers(
    ray_local: None, tmp_path: Path, tiny_model_dir: Path, tiny_corpus: dict[str, Path]
) -> None:
    data = job_dict(
        tiny_model_dir,
        tiny_corpus,
        tmp_path / "runs",
        scaling={"num_workers": 2},
        train={"deepspeed": "zero2"},
    )
    out = launch(JobConfig.from_mapping(data))
    assert out.best_checkpoint is not None and out.best_dir is not None
    ck = out.best_checkpoint / "checkpoint"
    assert (ck / "latest").is_file() and list(ck.glob("global_step*"))  # a DeepSpeed checkpoint
    assert len(list(ck.glob("rng_state_*.pth"))) == 2  # both ranks
    assert _generates(out.best_dir)
