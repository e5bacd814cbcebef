"""The callbacks' own rules: final evaluation + save, the throughput figures, the metrics file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from transformers import TrainerControl

from whisper_tune.train.callbacks import FinalEvalSave, Throughput, collect_metrics


def test_final_step_is_evaluated_and_saved() -> None:
    cb = FinalEvalSave()
    control = cb.on_step_end(None, SimpleNamespace(global_step=3, max_steps=4), TrainerControl())
    assert not control.should_evaluate and not control.should_save
    control = cb.on_step_end(None, SimpleNamespace(global_step=4, max_steps=4), TrainerControl())
    assert control.should_evaluate and control.should_save


def _steps(cb: Throughput, n: int, *, evaluate_at: int | None = None) -> None:
    cb.on_train_begin(None, None, None)
    for step in range(1, n + 1):
        state = SimpleNamespace(global_step=step)
        cb.on_step_begin(None, state, None)
        cb.on_step_end(None, state, None)
        if step == evaluate_at:
            cb.on_evaluate(None, state, None)


def test_throughput_skips_warmup_and_writes_into_fast_path_json(tmp_path: Path) -> None:
    (tmp_path / "fast_path.json").write_text(json.dumps({"n_frames": 864}), encoding="utf-8")
    cb = Throughput(global_batch=8, run_dir=tmp_path, warmup=2)
    _steps(cb, 6, evaluate_at=4)
    found = cb.summary()
    assert found is not None and found["measured_steps"] == 4 and found["global_batch"] == 8
    assert found["wall_samples_per_s"] <= found["step_samples_per_s"]
    # the warm-up (where torch.compile traces) is timed on its own, not hidden
    assert found["warmup_steps"] == 2 and found["warmup_s"] is not None and found["warmup_s"] >= 0
    cb.on_train_end(None, None, None)
    data = json.loads((tmp_path / "fast_path.json").read_text(encoding="utf-8"))
    assert data["n_frames"] == 864 and data["throughput"] == found


def test_throughput_without_measured_steps_writes_nothing(tmp_path: Path) -> None:
    cb = Throughput(global_batch=8, run_dir=tmp_path, warmup=2)
    _steps(cb, 2)
    assert cb.summary() is None
    cb.on_train_end(None, None, None)
    assert not (tmp_path / "fast_path.json").exists()


def test_collect_metrics_later_entries_win() -> None:
    state = SimpleNamespace(
        log_history=[{"loss": 2.0}, {"loss": 1.0, "eval_wer": 0.5}], global_step=4, epoch=1.0
    )
    assert collect_metrics(state) == {"loss": 1.0, "eval_wer": 0.5, "step": 4, "epoch": 1.0}
