"""The training recipe's steps, one at a time, on the toy random Whisper and a few synthetic clips.

Each step takes and returns a small typed state, so each is checked alone here; the last
test runs them all (``recipe.run``, no Ray) and checks the files a run leaves.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from whisper_tune.train import recipe, run_files
from whisper_tune.train.callbacks import FinalEvalSave, LocalCheckpoints, Throughput
from whisper_tune.train.config import JobConfig
from whisper_tune.train.fastpath import resolve_precision

TEXTS = ["freeze my card please", "what is my balance", "send money with zelle", "i lost my debit card"]


def _corpus(root: Path, n: int, name: str) -> Path:
    import soundfile as sf

    rng = np.random.default_rng(len(name))
    rows = []
    for i in range(n):
        dur = 0.5 + 0.25 * (i % 3)
        t = np.arange(int(16000 * dur)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.02 * rng.standard_normal(t.size)
        path = root / name / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wav.astype(np.float32), 16000)
        rows.append({"audio_filepath": str(path), "text": TEXTS[i % len(TEXTS)], "duration": dur})
    manifest = root / f"{name}.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recipe_corpus")
    return {"train": _corpus(root, 6, "train"), "eval": _corpus(root, 2, "eval")}


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _config(model_dir: Path, corpus: dict[str, Path], run_dir: Path, **train: Any) -> dict[str, Any]:
    job = {
        "model": {"name": str(model_dir)},
        # the eval clips stand in for the real-speech guard: the guard path runs, fast
        "data": {"train": str(corpus["train"]), "eval": str(corpus["eval"]), "guard": str(corpus["eval"])},
        "train": {
            "learning_rate": 1e-3,
            "per_device_batch_size": 2,
            "max_steps": 4,
            "eval_steps": 2,
            "save_steps": 2,
            "logging_steps": 1,
            "generation_max_length": 8,
            "torch_threads": 1,
            **train,
        },
        "scaling": {"num_workers": 1, "use_gpu": False},
        "run": {"storage_path": str(run_dir.parent), "name": run_dir.name, "num_to_keep": 2},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "job": JobConfig.from_mapping(job).to_dict(),
        "run_dir": str(run_dir),
        "hf_output_dir": str(run_dir.parent / f"{run_dir.name}-hf"),
        "use_ray": False,
        "use_gpu": False,
    }


def _worker(config: dict[str, Any]) -> recipe.Worker:
    return recipe.setup_worker(recipe.WorkerConfig.from_mapping(config))


def test_setup_worker_without_ray(tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]) -> None:
    cfg = recipe.WorkerConfig.from_mapping(_config(tiny_model_dir, corpus, tmp_path / "run", torch_threads=1))
    assert cfg.run_dir == tmp_path / "run" and cfg.use_ray is False and cfg.job.train.max_steps == 4
    worker = recipe.setup_worker(cfg)
    assert (worker.device, worker.precision, worker.threads) == ("cpu", resolve_precision("auto", "cpu"), 1)
    assert worker.info == recipe.WorkerInfo() and not worker.use_gpu
    assert torch.get_num_threads() == 1
    # asked for a GPU on a machine without CUDA: trains on CPU
    gpu_cfg = recipe.WorkerConfig.from_mapping(
        {**_config(tiny_model_dir, corpus, tmp_path / "g"), "use_gpu": True}
    )
    if not torch.cuda.is_available():
        assert recipe.setup_worker(gpu_cfg).device == "cpu"


def test_expected_steps() -> None:
    job = JobConfig.from_mapping(
        {"data": {"train": "t", "eval": "e"}, "train": {"num_epochs": 2, "per_device_batch_size": 4}}
    )
    assert recipe.expected_steps(job, 10, 1) == 6  # ceil(10 / 4) = 3 per epoch
    assert recipe.expected_steps(job, 10, 2) == 4  # 8 per step: 2 per epoch
    capped = JobConfig.from_mapping({"data": {"train": "t", "eval": "e"}, "train": {"max_steps": 7}})
    assert recipe.expected_steps(capped, 10**6, 8) == 7


def test_model_data_plan_apply(tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]) -> None:
    worker = _worker(
        _config(tiny_model_dir, corpus, tmp_path / "run", encoder_frames=192, group_by_length=True)
    )
    model = recipe.build_model(worker)
    assert model.decoder_start_id == int(model.model.config.decoder_start_token_id)
    data = recipe.load_datasets(worker, model)
    assert len(data.train) == 6 and len(data.eval) == 2
    assert data.lengths is not None and len(data.lengths) == 6
    assert (tmp_path / "run" / run_files.FEATURES_DIR).is_dir()  # the run's feature cache

    train_plan = recipe.plan(worker, data)
    assert train_plan.n_frames == 192 and train_plan.encoder_cache is None
    fast = train_plan.fast_path
    assert (fast.device, fast.precision, fast.compile_scope, fast.attn_implementation) == (
        "cpu",
        resolve_precision("auto", "cpu"),  # bf16 on CPUs with hardware bf16
        "none",
        "sdpa",
    )
    assert fast.notes and "192" in fast.notes[0]
    assert set(train_plan.to_dict()) == {
        "device",
        "precision",
        "attn_implementation",
        "optim",
        "compile_scope",
        "gradient_checkpointing",
        "n_frames",
        "dataloader_num_workers",
        "notes",
        "group_by_length",
    }

    ready = recipe.apply_plan(worker, model, data, train_plan)
    assert ready.model.config.max_source_positions == 96 and ready.model.config.use_cache is False
    assert not ready.model.get_encoder().embed_positions.weight.requires_grad
    written = json.loads((tmp_path / "run" / run_files.FAST_PATH_FILE).read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(train_plan.to_dict()))
    batch = ready.collator([ready.train[0], ready.train[1]])
    assert batch["input_features"].shape[-1] == 192


def test_kl_to_base_trains_against_a_frozen_copy_of_the_start(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    worker = _worker(_config(tiny_model_dir, corpus, tmp_path / "run", kl_to_base=0.5, strategy="decoder"))
    model = recipe.build_model(worker)
    data = recipe.load_datasets(worker, model)
    train_plan = recipe.plan(worker, data)
    ready = recipe.apply_plan(worker, model, data, train_plan)
    assert ready.reference is not None and ready.guard is not None
    assert all(not p.requires_grad for p in ready.reference.model.parameters())
    trainer = recipe.build_trainer(
        worker, model, ready, recipe.trainer_arguments(worker, train_plan), recipe.callbacks(worker)
    )
    assert trainer.reference is ready.reference and trainer.kl_weight == 0.5
    batch = ready.collator([ready.train[0], ready.train[1]])
    ready.model.train()
    with_kl = trainer.compute_loss(ready.model, dict(batch))
    trainer.reference = None
    plain = trainer.compute_loss(ready.model, dict(batch))
    assert float(with_kl) == pytest.approx(float(plain), abs=1e-5)  # at the start the two models agree
    with torch.no_grad():
        for p in ready.model.model.decoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainer.reference = ready.reference
    drifted_kl = float(trainer.compute_loss(ready.model, dict(batch)))
    trainer.reference = None
    drifted_plain = float(trainer.compute_loss(ready.model, dict(batch)))
    assert drifted_kl > drifted_plain + 1e-4  # the KL term now pulls towards the start


def test_eager_attention_is_the_jobs_choice(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    config = _config(tiny_model_dir, corpus, tmp_path / "run")
    config["job"]["model"]["attn_implementation"] = "eager"
    worker = _worker(config)
    model = recipe.build_model(worker)
    data = recipe.load_datasets(worker, model)
    assert recipe.plan(worker, data).fast_path.attn_implementation == "eager"


def test_encoder_cache_is_planned_and_built(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    from whisper_tune.train.encoder_cache import CachedEncoderCollator, CachedEncoderDataset

    worker = _worker(
        _config(tiny_model_dir, corpus, tmp_path / "run", strategy="decoder", cache_encoder_outputs=True)
    )
    model = recipe.build_model(worker)
    data = recipe.load_datasets(worker, model)
    train_plan = recipe.plan(worker, data)
    assert train_plan.encoder_cache == tmp_path / "run" / run_files.ENCODER_CACHE_DIR
    ready = recipe.apply_plan(worker, model, data, train_plan)
    assert isinstance(ready.train, CachedEncoderDataset) and isinstance(ready.collator, CachedEncoderCollator)
    assert (train_plan.encoder_cache / "train" / "meta.json").is_file()
    assert "encoder_hidden" in ready.train[0]


def test_trainer_arguments_follow_job_and_plan(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    from whisper_tune.train.compat import checkpointing_arg_name
    from whisper_tune.train.fastpath import plan_fast_path

    config = _config(
        tiny_model_dir, corpus, tmp_path / "run", gradient_checkpointing=True, dataloader_num_workers=1
    )
    worker = _worker(config)
    fast = plan_fast_path("cpu", "fp32", gradient_checkpointing=True, num_workers=1)
    args = recipe.trainer_arguments(worker, recipe.TrainPlan(3000, fast, None, False))
    assert args.output_dir == config["hf_output_dir"] and args.use_cpu
    assert args.per_device_train_batch_size == 2 and args.max_steps == 4 and args.eval_steps == 2
    assert args.optim == "adamw_torch" and not args.bf16 and not args.fp16
    assert getattr(args, checkpointing_arg_name()) is True
    assert args.dataloader_num_workers == 1 and args.predict_with_generate
    assert args.deepspeed is None and args.disable_tqdm  # the driver shows the one bar (train/progress.py)


def test_callbacks_by_rank(tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]) -> None:
    from transformers.integrations import TensorBoardCallback

    from whisper_tune.train.progress import ProgressFile

    config = _config(tiny_model_dir, corpus, tmp_path / "run")
    worker = _worker(config)
    kinds = [type(c) for c in recipe.callbacks(worker)]
    assert kinds == [FinalEvalSave, Throughput, TensorBoardCallback, ProgressFile, LocalCheckpoints]
    other = recipe.setup_worker(
        recipe.WorkerConfig.from_mapping(config), recipe.WorkerInfo(rank=1, local_rank=1, world_size=2)
    )
    found = recipe.callbacks(other)
    assert [type(c) for c in found] == [FinalEvalSave, Throughput, LocalCheckpoints]
    throughput = found[1]
    assert isinstance(throughput, Throughput) and throughput.run_dir is None
    assert throughput.global_batch == 2 * 2  # batch 2 x 2 workers


def test_resume_without_ray_is_the_latest_complete_checkpoint(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    run = tmp_path / "run"
    worker = _worker(_config(tiny_model_dir, corpus, run))
    with recipe.resume(worker) as found:
        assert found is None
    for step in (2, 4):
        ck = run_files.checkpoint_dir(run, step)
        shutil.copytree(tiny_model_dir, ck / run_files.HF_CHECKPOINT)
        (ck / run_files.HF_CHECKPOINT / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (ck / run_files.METRICS_FILE).write_text(json.dumps({"step": step}))
    (run / "checkpoint_000006").mkdir()  # half-written: never the resume point
    with recipe.resume(worker) as found:
        assert found == str(run / "checkpoint_000004" / "checkpoint")


def test_run_without_ray_leaves_the_run_files(
    tmp_path: Path, tiny_model_dir: Path, corpus: dict[str, Path]
) -> None:
    run = tmp_path / "run"
    config = _config(tiny_model_dir, corpus, run)
    assert recipe.run(config) == {"global_step": 4, "world_size": 1}
    assert sorted(p.name for p in run.glob("checkpoint_*")) == ["checkpoint_000002", "checkpoint_000004"]
    metrics = json.loads((run / "checkpoint_000004" / "metrics.json").read_text())
    assert metrics["step"] == 4 and "eval_wer" in metrics and "epoch" in metrics
    # the guard: scored at step 0 (the base) and with every evaluation; the bound and the score Ray keeps by
    assert {"guard_wer", "guard_loss", "base_guard_wer", "guard_limit", "guard_ok", "select_score"} <= set(
        metrics
    )
    assert metrics["guard_limit"] == metrics["base_guard_wer"]  # run.guard_tolerance 0
    assert metrics["select_score"] == metrics["eval_wer"] + (0.0 if metrics["guard_ok"] else 1.0)
    state = json.loads((run / "checkpoint_000004" / "checkpoint" / "trainer_state.json").read_text())
    assert any(e.get("step") == 0 and "guard_wer" in e for e in state["log_history"])
    assert (run / "checkpoint_000004" / "checkpoint" / "trainer_state.json").is_file()
    plan = json.loads((run / "fast_path.json").read_text(encoding="utf-8"))
    assert plan["device"] == "cpu" and plan["n_frames"] == 3000 and plan["group_by_length"] is False
    assert plan["throughput"]["measured_steps"] == 2 and plan["throughput"]["global_batch"] == 2
    assert any((run / "tensorboard").iterdir())
    assert not Path(config["hf_output_dir"]).exists()  # the Trainer's own output dir is removed
