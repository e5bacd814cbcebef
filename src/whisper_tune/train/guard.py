"""The real-speech guard during training: scored at every evaluation, it decides what is "best".

Why: the eval set is domain speech (often synthetic), so its WER rewards a decoder that learnt
the domain's phrasing even when that phrasing now wrecks ordinary speech. Every evaluation
therefore also scores the guard (``data.guard``: real human recordings; see
``whisper_tune.data.guard``), once before training (``eval_on_start``: the base model's
numbers) and then at every ``eval_steps``. Each evaluation's metrics gain:

- ``guard_wer`` / ``guard_loss`` (TensorBoard ``guard_wer``; Ray-reported with the checkpoint),
- ``base_guard_wer`` (the step-0 guard WER), ``guard_limit`` = base x (1 + ``run.guard_tolerance``),
- ``guard_ok`` (guard WER within the limit) and ``select_score`` = eval_wer (+1 when not
  ``guard_ok``), the attribute Ray keeps checkpoints by, so admissible checkpoints survive
  ``run.num_to_keep`` pruning and ``runs.best_of`` ranks them first.

Without a guard (``data.guard: none``) ``select_score`` is eval_wer and ``guard_ok`` is absent.
"""

from __future__ import annotations

import logging
from typing import Any

from whisper_tune.data.guard import NONE_VALUES, resolve_guard
from whisper_tune.paths import cache_root
from whisper_tune.runs import GUARD_OK, SCORE, SELECT_SCORE

__all__ = ["GUARD_PREFIX", "guard_enabled", "guard_fields", "guard_in_training", "resolve_guard_manifest"]

log = logging.getLogger(__name__)

GUARD_PREFIX = "guard"  # metric_key_prefix of the guard evaluation: guard_wer, guard_loss


def guard_enabled(spec: str) -> bool:
    """Whether ``data.guard`` asks for a guard (``none``/``off``/``false``/empty do not)."""
    return str(spec).strip().lower() not in NONE_VALUES


def guard_in_training(data: Any) -> bool:
    """Whether workers score the guard at each evaluation (``data.guard`` on, ``data.guard_at:
    every_eval``); with ``export`` only the export check scores it (``train/finalize.py``)."""
    return guard_enabled(data.guard) and data.guard_at == "every_eval"


def resolve_guard_manifest(spec: str, max_clips: int | None = None) -> str | None:
    """``data.guard`` -> a manifest path, None for ``none``; ``builtin`` is built once into the cache."""
    path = resolve_guard(spec, cache_dir=cache_root() / "guard", max_clips=max_clips)
    return None if path is None else str(path)


def guard_fields(
    log_history: list[dict[str, Any]], metrics: dict[str, Any], tolerance: float
) -> dict[str, Any]:
    """The guard bookkeeping for one evaluation's ``metrics`` (see the module docstring)."""
    out: dict[str, Any] = {}
    wer = metrics.get(SCORE)
    guard = metrics.get(f"{GUARD_PREFIX}_wer")
    base = _base_guard(log_history)
    if base is None and metrics.get("step") == 0:
        base = guard
    if isinstance(guard, (int, float)) and isinstance(base, (int, float)):
        limit = float(base) * (1.0 + tolerance)
        ok = float(guard) <= limit + 1e-9
        # 1.0 / 0.0, not a bool: TensorBoard drops (and warns about) non-numeric scalars
        out.update({"base_guard_wer": float(base), "guard_limit": limit, GUARD_OK: 1.0 if ok else 0.0})
        if isinstance(wer, (int, float)):
            out[SELECT_SCORE] = float(wer) + (0.0 if ok else 1.0)
    elif isinstance(wer, (int, float)):
        out[SELECT_SCORE] = float(wer)
    return out


def _base_guard(log_history: list[dict[str, Any]]) -> float | None:
    """The guard WER logged at step 0 (``eval_on_start``: the weights training started from)."""
    for entry in log_history:
        if entry.get("step") == 0 and isinstance(entry.get(f"{GUARD_PREFIX}_wer"), (int, float)):
            return float(entry[f"{GUARD_PREFIX}_wer"])
    return None
