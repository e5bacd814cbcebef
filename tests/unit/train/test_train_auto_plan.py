"""The GPU plan inside the recipe, on CPU: a fake GPU makes every ``auto`` resolve as on a card,
and the in-memory tensor data path trains; the real path's files (plan.json) are written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from whisper_tune.train import recipe, resolve
from whisper_tune.train.config import JobConfig
from whisper_tune.train.plan import GIB, GpuFacts
from whisper_tune.train.tensor_data import TensorBatches, TensorFeatures

TEXTS = ["freeze my card please", "what is my balance", "send money with zelle"]


def _manifest(root: Path, n: int, name: str) -> Path:
    import soundfile as sf

    rows = []
    for i in range(n):
        dur = 0.5 + 0.25 * (i % 3)
        t = np.arange(int(16000 * dur)) / 16000
        path = root / name / f"{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32), 16000)
        rows.append({"audio_filepath": str(path), "text": TEXTS[i % len(TEXTS)], "duration": dur})
    out = root / f"{name}.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _config(model_dir: Path, root: Path, **train: Any) -> dict[str, Any]:
    run_dir = root / "run"
    job = {
        "model": {"name": str(model_dir)},
        "data": {
            "train": str(_manifest(root, 8, "train")),
            "eval": str(_manifest(root, 4, "eval")),
            "guard": "none",
        },
        "train": {
            "per_device_batch_size": "auto",
            "deepspeed": "auto",
            "short_audio": "auto",
            "generation_max_length": "auto",
            "precision": "fp32",  # explicit: wins over the fake GPU's bf16
            "max_steps": 3,
            "eval_steps": 3,
            "save_steps": 3,
            "torch_threads": 1,
            **train,
        },
        "scaling": {"num_workers": 1, "use_gpu": False},
        "run": {"storage_path": str(root), "name": "run"},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        "job": JobConfig.from_mapping(job).to_dict(),
        "run_dir": str(run_dir),
        "hf_output_dir": str(root / "hf"),
        "use_ray": False,
        "use_gpu": False,
    }


@pytest.fixture()
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    facts = GpuFacts("NVIDIA H200", 1, int(139.8 * GIB), True, 64 * GIB)
    monkeypatch.setattr(resolve.GpuFacts, "probe", classmethod(lambda cls, world, device: facts))


@pytest.mark.usefixtures("fake_gpu")
def test_auto_plan_resolves_and_trains_from_tensors(tmp_path: Path, tiny_model_dir: Path) -> None:
    before = torch.get_num_threads()
    try:
        config = _config(tiny_model_dir, tmp_path)
        worker = recipe.setup_worker(recipe.WorkerConfig.from_mapping(config))
        model = recipe.build_model(worker)
        data = recipe.load_datasets(worker, model)
        train_plan = recipe.plan(worker, data, model)
        t = worker.job.train
        # 8 clips: the batch keeps >= 32 steps per epoch -> the minimum, 8
        assert (t.per_device_batch_size, t.deepspeed, t.precision) == (8, "none", "fp32")
        assert isinstance(t.generation_max_length, int) and t.generation_max_length <= 448
        assert train_plan.n_frames == 176 and train_plan.in_memory  # 1 s clips + 64 frames, rounded to 16
        ready = recipe.apply_plan(worker, model, data, train_plan)
        assert isinstance(ready.train, TensorFeatures) and isinstance(ready.collator, TensorBatches)
        batch = ready.collator(ready.train.__getitems__([0, 1, 2]))
        assert (
            batch["input_features"].shape == (3, 80, 176) and batch["input_features"].dtype == torch.float32
        )
        assert batch["labels"].shape[0] == 3 and int(batch["labels"][0, 0]) != model.decoder_start_id
        plan = json.loads((tmp_path / "run" / "plan.json").read_text(encoding="utf-8"))
        assert plan["choices"]["precision"] == {
            "value": "fp32",
            "reason": "set in the config",
            "source": "config",
        }
        assert plan["choices"]["deepspeed"]["source"] == "auto" and plan["choices"]["data_in_memory"]["value"]

        assert recipe.run(config)["global_step"] == 3
        metrics = json.loads((tmp_path / "run" / "checkpoint_000003" / "metrics.json").read_text())
        assert "eval_wer" in metrics and metrics["eval_samples_per_second"] > 0
    finally:
        torch.set_num_threads(before)


def test_tensor_batches_match_the_streaming_collator(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = _config(tiny_model_dir, tmp_path, short_audio=False, per_device_batch_size=2)
    worker = recipe.setup_worker(recipe.WorkerConfig.from_mapping(config))
    model = recipe.build_model(worker)
    data = recipe.load_datasets(worker, model)
    from whisper_tune.data import WhisperCollator
    from whisper_tune.train.tensor_data import materialize

    streamed = WhisperCollator(model.processor, model.decoder_start_id, n_frames=400)
    held = materialize(data.train, 400, torch.float32)
    ours = TensorBatches(model.decoder_start_id, streamed)
    a = streamed([data.train[i] for i in (1, 4, 5)])
    b = ours(held.__getitems__([1, 4, 5]))
    # the set's full label width (one shape per batch for a compiled model), -100 after the rows
    width = a["labels"].shape[1]
    assert torch.equal(a["labels"], b["labels"][:, :width]) and bool((b["labels"][:, width:] == -100).all())
    assert ours(held.__getitems__([0]))["labels"].shape[1] == b["labels"].shape[1]
    assert torch.allclose(a["input_features"], b["input_features"])
    fp16 = ours(materialize(data.train, 400).__getitems__([1, 4, 5]))
    assert torch.allclose(a["input_features"], fp16["input_features"], atol=2e-3)
    # a plain item list (e.g. the guard's) goes to the streaming collator
    assert torch.equal(ours([data.train[0]])["labels"], streamed([data.train[0]])["labels"])
    with pytest.raises(ValueError, match="frames of audio"):
        materialize(data.train, 32)
