"""Choosing what a run exports: the best checkpoint that does not forget, or a mix with the base.

Why: a checkpoint with the lowest domain WER can be worse than the base model on real
speech (the decoder learns the domain corpus' phrasing). Every run therefore also scores a
real-speech *guard* set, and the model it exports must keep the guard WER within
``base_guard_wer * (1 + tolerance)``. The rule, in order:

1. Among checkpoints whose guard WER met the bound during training, the lowest eval WER
   (ties: later step): ``runs.best_of`` ranks admissible checkpoints first.
2. If none meets it, the run says so loudly and interpolates (WiSE-FT,
   ``models.interpolate``) between the base weights and the checkpoint with the lowest eval
   WER: alphas are tried from large to small (most domain gain first) and the first whose
   guard WER meets the bound is exported, with alpha in ``best/metrics.json``. alpha = 0 is
   the base model itself, so a model that meets the bound always exists.

A run without a guard (``data.guard: none``) uses rule 1 with every checkpoint admissible,
and its report says "no real-speech guard".

This module holds the decision only (the bound, the alpha search over a scoring callback, the
record), so it is tested without models; ``whisper_tune.train.finalize`` verifies the export and
runs the scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ALPHAS",
    "AlphaTrial",
    "GuardBound",
    "Selection",
    "choose_alpha",
]

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = (0.75, 0.5, 0.35, 0.2)  # tried in this order after alpha = 1 fails the bound


@dataclass(frozen=True)
class GuardBound:
    """``guard_wer <= base_guard_wer * (1 + tolerance)``."""

    base_guard_wer: float
    tolerance: float = 0.0

    @property
    def limit(self) -> float:
        return self.base_guard_wer * (1.0 + self.tolerance)

    def ok(self, guard_wer: float | None) -> bool:
        # a tiny epsilon: the same model scored twice must pass (float sums in another order)
        return guard_wer is not None and guard_wer <= self.limit + 1e-9


@dataclass
class AlphaTrial:
    alpha: float
    eval_wer: float | None  # None: not scored, the guard was already over the limit
    guard_wer: float
    admissible: bool


@dataclass
class Selection:
    """What the run exports and why (written into ``best/metrics.json`` as ``selection``)."""

    checkpoint_step: int | None
    alpha: float = 1.0  # 1.0: the checkpoint's own weights
    eval_wer: float | None = None
    guard_wer: float | None = None
    base_eval_wer: float | None = None
    base_guard_wer: float | None = None
    guard_limit: float | None = None
    rule: str = "lowest eval_wer"
    trials: list[AlphaTrial] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_alpha(
    guard: Callable[[float], float],
    evaluate: Callable[[float], float],
    bound: GuardBound,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> tuple[float, list[AlphaTrial]]:
    """Largest alpha in ``alphas`` (tried in order) whose mix meets ``bound``; 0.0 if none does.

    ``guard(alpha)`` is the guard WER of the interpolated model; ``evaluate(alpha)`` its eval WER,
    asked only of the admissible mix (a mix over the limit is never exported, and on a 2-core CPU
    each skipped eval pass saves ~20 s of the demo).
    """
    trials: list[AlphaTrial] = []
    for alpha in alphas:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"interpolation alphas must be in (0, 1), got {alpha}")
        guard_wer = guard(alpha)
        ok = bound.ok(guard_wer)
        eval_wer = evaluate(alpha) if ok else None
        trials.append(AlphaTrial(alpha, eval_wer, guard_wer, ok))
        log.info(
            "alpha %.2f: guard WER %.2f %% (limit %.2f %%)%s",
            alpha,
            guard_wer * 100,
            bound.limit * 100,
            f", eval WER {eval_wer * 100:.2f} %" if eval_wer is not None else " -- over the limit",
        )
        if ok:
            return alpha, trials
    return 0.0, trials
