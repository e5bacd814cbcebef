"""Training progress from the workers to the driver's one progress display.

Why: under Ray the Trainer runs in worker processes; their own tqdm bars reach the driver's
terminal interleaved, one per worker, mixed with every other line the workers print, and
``ray.train.report`` only speaks at checkpoints. Instead, rank 0 keeps a small
``progress.json`` in the run directory up to date (:class:`ProgressFile`: step, total steps,
epoch, last loss, last eval/guard WER, and whether it is evaluating), written at most once a
second and atomically, and the driver polls it (:func:`follow_progress`) into one
:class:`whisper_tune.console.Stage` bar with an ETA. The HF Trainer's own bars are off.
A run dir the driver cannot read (a URI, another node's disk) just leaves the bar at its start.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from whisper_tune.console import Stage, format_pct

__all__ = ["PROGRESS_FILE", "ProgressFile", "follow_progress", "progress_note", "read_progress"]

PROGRESS_FILE = "progress.json"
_MIN_GAP_S = 1.0


class ProgressFile(TrainerCallback):
    """Rank 0: ``<run_dir>/progress.json`` with the Trainer's state (see the module docstring)."""

    def __init__(self, run_dir: Path, min_gap_s: float = _MIN_GAP_S) -> None:
        self.path = Path(run_dir) / PROGRESS_FILE
        self.min_gap_s = min_gap_s
        self.state: dict[str, Any] = {"phase": "starting"}
        self._last = 0.0

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_gap_s:
            return
        self._last = now
        self.state["time"] = time.time()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with contextlib.suppress(OSError):  # progress is a courtesy: never fail a run over it
            tmp.write_text(json.dumps(self.state), encoding="utf-8")
            os.replace(tmp, self.path)

    def _steps(self, state: Any) -> None:
        self.state.update(step=int(state.global_step), max_steps=int(state.max_steps or 0))
        if state.epoch is not None:
            self.state["epoch"] = round(float(state.epoch), 3)

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._steps(state)
        self.state["phase"] = "training"
        self._write(force=True)

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._steps(state)
        self.state["phase"] = "training"
        self._write()

    def on_prediction_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.state.get("phase") != "evaluating":
            self.state["phase"] = "evaluating"
            self._write(force=True)

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        for key in ("loss", "eval_wer", "guard_wer"):
            if isinstance((logs or {}).get(key), (int, float)):
                self.state[key] = float(logs[key])
        self._write()

    def on_evaluate(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.state["phase"] = "training"
        self._write(force=True)

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._steps(state)
        self.state["phase"] = "finished"
        self._write(force=True)


def read_progress(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``progress.json`` (None when absent or half-written)."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def progress_note(p: dict[str, Any]) -> str:
    """``epoch 0.52, loss 0.412, eval WER 12.31 %`` (+ ``evaluating``) for the bar."""
    parts = []
    if p.get("phase") == "evaluating":
        parts.append("evaluating")
    if isinstance(p.get("epoch"), (int, float)):
        parts.append(f"epoch {p['epoch']:.2f}")
    if isinstance(p.get("loss"), (int, float)):
        parts.append(f"loss {p['loss']:.3f}")
    if isinstance(p.get("eval_wer"), (int, float)):
        parts.append(f"eval WER {format_pct(p['eval_wer'])}")
    if isinstance(p.get("guard_wer"), (int, float)):
        parts.append(f"guard {format_pct(p['guard_wer'])}")
    return ", ".join(parts)


@contextlib.contextmanager
def follow_progress(run_dir: Path, stage: Stage, poll_s: float = 1.0) -> Iterator[None]:
    """While the block runs, a thread feeds ``stage`` from the run's ``progress.json``."""
    stop = threading.Event()
    started = time.time()

    def poll() -> None:
        while not stop.wait(poll_s):
            p = read_progress(run_dir)
            if p is None or float(p.get("time", 0)) < started - 5:  # a previous run's file
                continue
            total = p.get("max_steps") or None
            stage.update(float(p.get("step", 0)), float(total) if total else None, progress_note(p))

    thread = threading.Thread(target=poll, name="whisper-tune-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
