"""The per-worker training entry points: what Ray Train runs, and what ``--no-ray`` runs.

Why: Ray Train needs one importable function to run once per worker, and ``--no-ray`` runs
the very same code in the current process, so a failing run can be debugged with a plain
``pdb``. The run itself is the recipe of named steps in :mod:`whisper_tune.train.recipe`;
these names stay here because the launcher (``whisper_tune.train.launch``) and Ray's
pickled ``train_loop_per_worker`` refer to them.
"""

from __future__ import annotations

from typing import Any

from whisper_tune.train import recipe
from whisper_tune.train.inputs import load_data

__all__ = ["load_data", "run_worker", "train_func"]


def train_func(config: dict[str, Any]) -> None:
    """Ray Train entry point: train one worker's share (see :func:`run_worker`)."""
    run_worker(config)


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Train one worker's share; returns ``{"global_step", "world_size"}``.

    ``config``: ``{"job": JobConfig dict, "run_dir", "hf_output_dir", "use_ray", "use_gpu"}``
    (built by :func:`whisper_tune.train.launch.launch`; see :class:`recipe.WorkerConfig`).
    """
    return recipe.run(config)
