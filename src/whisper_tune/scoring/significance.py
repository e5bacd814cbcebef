"""Is the tuned model really better? Bootstrap confidence intervals for a WER difference.

Why: a WER drop on a few hundred utterances can be noise. Bisani & Ney (2004, "Bootstrap
estimates for confidence intervals in ASR performance evaluation", ICASSP) resample the test
set's utterances with replacement, recompute both systems' corpus WER on each replicate (the
*same* replicate for both: the comparison is paired), and read the confidence interval of the
difference off the replicates' percentiles; the share of replicates in which the tuned system
is better is the "probability of improvement" (POI).

Utterances of one speaker or one call are not independent (a speaker the model mishears is
misheard in all their utterances), so when a grouping field exists the *groups* are resampled
whole ("block bootstrap"): each replicate draws groups with replacement and sums their errors
and reference words. With one utterance per group this is exactly the utterance bootstrap.

Hand-written because no well-kept library does the paired, corpus-level (sum of errors over
sum of words), group-block version: ``scipy.stats.bootstrap`` resamples a statistic of
per-sample values, and a corpus WER is a ratio of sums, not a mean of per-utterance WERs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BootstrapResult", "paired_bootstrap", "DEFAULT_REPLICATES"]

DEFAULT_REPLICATES = 2000


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``tuned - base`` corpus WER (fractions, negative = tuned better)."""

    base_wer: float
    tuned_wer: float
    diff: float  # tuned_wer - base_wer on the full set
    diff_low: float  # 2.5th percentile (for confidence 0.95)
    diff_high: float  # 97.5th percentile
    rel_diff: float | None  # diff / base_wer (None when base_wer is 0)
    rel_low: float | None
    rel_high: float | None
    prob_improvement: float  # share of replicates with tuned_wer < base_wer
    replicates: int
    confidence: float
    units: int  # utterances or groups resampled
    unit: str  # "utterance" or the grouping field's name
    seed: int

    @property
    def significant(self) -> bool:
        """The interval excludes 0: the difference is unlikely to be noise (either direction)."""
        return self.diff_high < 0.0 or self.diff_low > 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["significant"] = self.significant
        return d

    def summary(self) -> str:
        """One line for people, e.g. ``-4.10 pts [95 % CI -5.32, -2.95]; relative -39.8 % [...]``."""
        pct = round(self.confidence * 100)
        line = (
            f"{self.diff * 100:+.2f} pts [{pct} % CI {self.diff_low * 100:+.2f}, {self.diff_high * 100:+.2f}]"
        )
        if self.rel_diff is not None and self.rel_low is not None and self.rel_high is not None:
            line += f"; relative {self.rel_diff * 100:+.1f} % [{self.rel_low * 100:+.1f}, {self.rel_high * 100:+.1f}]"
        line += f"; P(improvement) {self.prob_improvement:.3f} ({self.replicates} resamples of {self.units} {self.unit}s)"
        return line


def _group_sums(values: np.ndarray, groups: Sequence[Any] | None) -> tuple[np.ndarray, int]:
    if groups is None:
        return values, len(values)
    index: dict[Any, int] = {}
    ids = np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)
    out = np.zeros((len(index), values.shape[1]), dtype=np.float64)
    np.add.at(out, ids, values)
    return out, len(index)


def paired_bootstrap(
    base_errors: Sequence[float],
    tuned_errors: Sequence[float],
    ref_words: Sequence[float],
    *,
    groups: Sequence[Any] | None = None,
    group_field: str | None = None,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Paired (block) bootstrap of the corpus-WER difference ``tuned - base``.

    ``base_errors``/``tuned_errors``: word errors (S + D + I) per utterance; ``ref_words``: the
    reference's word count per utterance (the same for both systems); ``groups``: an optional
    group key per utterance (speaker, call) whose utterances are resampled together.
    Deterministic for a given ``seed``.
    """
    n = len(ref_words)
    if not (len(base_errors) == len(tuned_errors) == n):
        raise ValueError(
            f"paired_bootstrap: lengths differ (base {len(base_errors)}, tuned {len(tuned_errors)}, refs {n})"
        )
    if groups is not None and len(groups) != n:
        raise ValueError(f"paired_bootstrap: {len(groups)} group keys for {n} utterances")
    if n == 0:
        raise ValueError("paired_bootstrap: no utterances")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_bootstrap: confidence must be in (0, 1), got {confidence}")
    if replicates < 100:
        raise ValueError(f"paired_bootstrap: at least 100 replicates, got {replicates}")
    table = np.column_stack(
        [np.asarray(base_errors, float), np.asarray(tuned_errors, float), np.asarray(ref_words, float)]
    )
    units, k = _group_sums(table, groups)
    total = units.sum(axis=0)
    words = max(total[2], 1e-12)
    base_wer, tuned_wer = total[0] / words, total[1] / words

    rng = np.random.default_rng(seed)
    diffs = np.empty(replicates)
    rels = np.empty(replicates)
    chunk = max(1, min(replicates, 2_000_000 // max(k, 1)))  # bound memory: chunk x k indices
    done = 0
    while done < replicates:
        m = min(chunk, replicates - done)
        idx = rng.integers(0, k, size=(m, k))
        sums = units[idx].sum(axis=1)  # (m, 3)
        w = np.maximum(sums[:, 2], 1e-12)
        b, t = sums[:, 0] / w, sums[:, 1] / w
        diffs[done : done + m] = t - b
        with np.errstate(divide="ignore", invalid="ignore"):
            rels[done : done + m] = np.where(b > 0, (t - b) / np.where(b > 0, b, 1.0), np.nan)
        done += m
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    rel = (tuned_wer - base_wer) / base_wer if base_wer > 0 else None
    finite = rels[np.isfinite(rels)]
    rel_lo = rel_hi = None
    if rel is not None and len(finite) >= replicates // 2:
        rl, rh = np.quantile(finite, [alpha, 1.0 - alpha])
        rel_lo, rel_hi = float(rl), float(rh)
    poi = float(np.mean(diffs < 0.0))
    return BootstrapResult(
        base_wer=float(base_wer),
        tuned_wer=float(tuned_wer),
        diff=float(tuned_wer - base_wer),
        diff_low=float(lo),
        diff_high=float(hi),
        rel_diff=None if rel is None or not math.isfinite(rel) else float(rel),
        rel_low=rel_lo,
        rel_high=rel_hi,
        prob_improvement=poi,
        replicates=replicates,
        confidence=confidence,
        units=k,
        unit=group_field
        if groups is not None and group_field
        else ("group" if groups is not None else "utterance"),
        seed=seed,
    )
