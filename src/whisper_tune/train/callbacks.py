"""The Trainer callbacks a training run installs: final save, throughput, checkpoints, TensorBoard.

Why: what a run leaves in its run dir is decided by these callbacks, not by the HF
Trainer's own output dir (a temporary folder per worker): every checkpoint becomes
``<run>/checkpoint_<step>/`` holding the HF checkpoint and the ``metrics.json`` of its own
evaluation, through Ray (``ray.train.report``, every rank reports as Train V2 requires) or
directly without Ray, in the same layout. The final weights always get a scored checkpoint,
and the measured training speed is recorded in the run's ``fast_path.json``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from whisper_tune.train import run_files

__all__ = [
    "FinalEvalSave",
    "LocalCheckpoints",
    "Throughput",
    "collect_metrics",
    "copy_last_checkpoint",
    "move_to",
    "ray_report_callback",
    "tensorboard_callback",
]

log = logging.getLogger(__name__)


class FinalEvalSave(TrainerCallback):
    """Evaluate and save at the last step, so the final weights get a checkpoint with a score."""

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control


class Throughput(TrainerCallback):
    """Training speed without evaluation/saving: samples/s over the steps after ``warmup``.

    ``step_samples_per_s``: from the summed step times; ``wall_samples_per_s``: the same plus the
    gaps between steps (data loading, logging), except gaps holding an evaluation or a
    checkpoint save. On CUDA the steps are timed with CUDA events and the device is synchronised
    only where a segment of steps ends (before an evaluation or save, and at the end): a
    synchronisation per step would itself starve the GPU, since the CPU could no longer queue
    step n+1 while step n runs. Written into the run's ``fast_path.json`` (``run_dir``; None:
    kept in memory only, see :meth:`summary`) so runs can be compared. ``warmup_s``: seconds from
    the start of training to the end of the ``warmup`` steps (``torch.compile``'s tracing and code
    generation happen there), so a compiled run's one-off cost is on record beside its rate.
    """

    def __init__(self, global_batch: int, run_dir: Path | None, warmup: int = 2) -> None:
        self.global_batch = global_batch
        self.run_dir = run_dir
        self.warmup = warmup
        self.step_time = 0.0
        self.wall = 0.0
        self.steps = 0
        self._begin = 0.0
        self._seg_start: float | None = None
        self._events: list[tuple[Any, Any]] = []
        self._cuda = False
        self._last_done = 0  # global_step at the last step end
        self._timing = False
        self._train_begin: float | None = None
        self.warmup_s: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._train_begin = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        self._timing = self._last_done >= self.warmup
        if not self._timing:
            return
        if self._seg_start is None:
            if self._cuda:
                torch.cuda.synchronize()
            self._seg_start = time.perf_counter()
        self._begin = time.perf_counter()
        if self._cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self._events.append((ev, None))

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._last_done = int(state.global_step)
        if self._last_done == self.warmup and self.warmup_s is None and self._train_begin is not None:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                torch.cuda.synchronize()
            self.warmup_s = round(time.perf_counter() - self._train_begin, 2)
        if not self._timing or self._seg_start is None:
            return
        if self._cuda and self._events:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self._events[-1] = (self._events[-1][0], ev)
        else:
            self.step_time += time.perf_counter() - self._begin
        self.steps += 1
        last = getattr(state, "max_steps", 0) or 0
        if (
            getattr(control, "should_evaluate", False)
            or getattr(control, "should_save", False)
            or (0 < last <= state.global_step)
        ):
            self._close_segment()

    def _close_segment(self) -> None:
        if self._seg_start is None:
            return
        if self._cuda:
            torch.cuda.synchronize()
            self.step_time += sum(b.elapsed_time(e) / 1000.0 for b, e in self._events if e is not None)
            self._events = []
        self.wall += time.perf_counter() - self._seg_start
        self._seg_start = None

    def on_evaluate(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._close_segment()

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._close_segment()

    def summary(self) -> dict[str, Any] | None:
        """The measured figures (None before any step after the warm-up); closes an open segment."""
        self._close_segment()
        if self.steps == 0:
            return None
        return {
            "measured_steps": self.steps,
            "global_batch": self.global_batch,
            "step_samples_per_s": round(self.steps * self.global_batch / max(self.step_time, 1e-9), 2),
            "wall_samples_per_s": round(self.steps * self.global_batch / max(self.wall, 1e-9), 2),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if self._cuda else None,
            "warmup_steps": self.warmup,
            "warmup_s": self.warmup_s,
        }

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        found = self.summary()
        if self.run_dir is None or found is None:
            return
        run_files.update_json(self.run_dir, run_files.FAST_PATH_FILE, throughput=found)


def collect_metrics(state: Any) -> dict[str, Any]:
    """Everything the Trainer logged so far (later entries win) plus the step and epoch."""
    metrics: dict[str, Any] = {}
    for entry in state.log_history:
        metrics.update(entry)
    metrics["step"] = state.global_step
    metrics["epoch"] = state.epoch
    return metrics


def copy_last_checkpoint(args: Any, state: Any, target: Path) -> bool:
    """Move the Trainer's newest checkpoint into ``target`` with its ``metrics.json`` (written last).

    Moved, not copied: the Trainer's output dir is this run's private temporary folder (removed
    at the end, one checkpoint kept), and a whisper-small checkpoint with its AdamW state is ~3 GB,
    which took seconds per copy. On one filesystem the move is a rename.
    """
    import json

    from transformers.trainer_utils import get_last_checkpoint

    src = get_last_checkpoint(args.output_dir)
    if src is None:
        return False
    shutil.move(src, target / run_files.HF_CHECKPOINT)
    (target / run_files.METRICS_FILE).write_text(json.dumps(collect_metrics(state), indent=2, default=str))
    return True


def ray_report_callback(local_rank: int, local_storage: Path | None = None) -> TrainerCallback:
    """A ``RayTrainReportCallback`` that names checkpoints by step and stores metrics.json in them.

    ``local_storage``: the run dir when Ray's storage is a local path: checkpoints are moved
    into it (:func:`move_to`) rather than copied.
    """
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback

    class _RayReport(RayTrainReportCallback):
        """Only local rank 0 attaches the files (one copy per node; DeepSpeed shards of all
        local ranks are in the shared output dir by then); every rank reports, as Train V2
        requires.
        """

        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            metrics = collect_metrics(state)
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = None
                if local_rank == 0 and copy_last_checkpoint(args, state, Path(tmp)):
                    ckpt = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(
                    metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
                    checkpoint=ckpt,
                    checkpoint_dir_name=run_files.checkpoint_dir_name(state.global_step),
                    **({"checkpoint_upload_fn": move_to(local_storage)} if ckpt and local_storage else {}),
                )
            log.info("step %d: checkpoint reported in %.1f s", state.global_step, time.perf_counter() - t0)

    return _RayReport()


def move_to(run_dir: Path) -> Any:
    """A Ray ``checkpoint_upload_fn`` for a run dir on a local (or mounted) filesystem: the
    checkpoint's files are moved into ``<run_dir>/<checkpoint_dir_name>`` (a rename on one
    filesystem) instead of Ray's byte copy through pyarrow."""

    def upload(checkpoint: Any, checkpoint_dir_name: str) -> Any:
        import ray.train

        dest = Path(run_dir) / checkpoint_dir_name
        part = dest.with_name(f".tmp_{checkpoint_dir_name}")  # complete before it gets its name
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        for child in sorted(Path(checkpoint.path).iterdir()):
            shutil.move(str(child), part / child.name)
        if dest.exists():  # a restarted attempt that reached the same step
            shutil.rmtree(dest)
        part.rename(dest)
        return ray.train.Checkpoint.from_directory(str(dest))

    return upload


class LocalCheckpoints(TrainerCallback):
    """Without Ray: the same checkpoint layout, keeping the ``num_to_keep`` best by eval_wer (+ latest)."""

    def __init__(self, run_dir: Path, num_to_keep: int) -> None:
        self.run_dir = run_dir
        self.num_to_keep = num_to_keep

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        target = run_files.checkpoint_dir(self.run_dir, state.global_step)
        if target.exists():
            shutil.rmtree(target)
        tmp = target.parent / f".tmp_{target.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if copy_last_checkpoint(args, state, tmp):
            tmp.rename(target)
        self._prune(target)

    def _prune(self, latest: Path) -> None:
        ckpts = run_files.checkpoints(self.run_dir)
        keep = {c.path for c in sorted(ckpts, key=lambda c: c.sort_key())[: self.num_to_keep]} | {latest}
        for c in ckpts:
            if c.path not in keep:
                shutil.rmtree(c.path, ignore_errors=True)


def tensorboard_callback(run_dir: Path) -> TrainerCallback | None:
    """TensorBoard events into ``<run>/tensorboard`` (None for a remote run dir: HF's default
    callback would write under the worker's temporary output dir)."""
    if run_files.is_remote(run_dir):
        return None
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return TensorBoardCallback(
        tb_writer=SummaryWriter(log_dir=str(Path(run_dir) / run_files.TENSORBOARD_DIR))
    )
