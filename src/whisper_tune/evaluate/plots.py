"""PNG plots for reports: WER by group (base vs tuned) and training/eval curves.

Why: a bar chart per manifest field shows at a glance whether the gain is broad (every
voice, every channel) or carried by one group; the training curves show whether the chosen
checkpoint sits at a real eval-WER minimum or at the end of an over-fitting run.

Matplotlib runs on the non-interactive ``Agg`` backend (no display on servers/CI).
Training curves are read from a run directory: the HF ``trainer_state.json`` with the
longest ``log_history`` found anywhere below it (Ray checkpoints hold one each), else the
TensorBoard event files below it (``train/loss``, ``eval/wer``... tags).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["plot_training_curves", "plot_wer_by_group", "read_training_curves"]

log = logging.getLogger(__name__)

Curves = dict[str, list[tuple[int, float]]]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


MAX_BARS = 15  # groups per panel; larger fields (speakers) show their highest-WER values
ROW_INCHES = 18.0  # panels wrap onto a new row beyond this width


def _pack_rows(widths: list[float], limit: float) -> list[list[int]]:
    rows: list[list[int]] = [[]]
    used = 0.0
    for i, w in enumerate(widths):
        if rows[-1] and used + w > limit:
            rows.append([])
            used = 0.0
        rows[-1].append(i)
        used += w
    return rows


def _panels(
    groups: dict[str, dict[str, dict[str, Any]]], overall: dict[str, float], rank_by: str
) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """(title, values) per panel: ``overall`` first, then each non-empty field, capped at MAX_BARS."""
    panels: list[tuple[str, dict[str, dict[str, Any]]]] = [("overall", {"all": dict(overall)})]
    for field, values in groups.items():
        if not values:
            continue
        if len(values) > MAX_BARS:
            worst = sorted(values, key=lambda v: -float(values[v].get(rank_by) or 0.0))[:MAX_BARS]
            panels.append((f"{field} ({MAX_BARS} highest of {len(values)})", {v: values[v] for v in worst}))
        else:
            panels.append((field, values))
    return panels


def plot_wer_by_group(
    groups: dict[str, dict[str, dict[str, Any]]],
    path: str | Path,
    *,
    overall: dict[str, float],
    series: tuple[str, ...] = ("wer",),
    labels: tuple[str, ...] = ("WER",),
) -> Path:
    """One bar panel per group field (plus an ``overall`` panel); one bar per series.

    ``groups``: field -> value -> {series key: WER fraction, ...}; ``overall``: series key -> WER.
    Panels wrap into rows of at most ``ROW_INCHES``; a field with more than ``MAX_BARS`` values
    shows the ``MAX_BARS`` with the highest WER of the last series (the full table is in
    report.md), so a per-speaker breakdown stays readable.
    """
    import numpy as np

    plt = _plt()
    panels = _panels(groups, overall, series[-1])
    widths = [min(ROW_INCHES, max(2.5, 0.7 * len(v) * len(series) + 1.2)) for _, v in panels]
    rows = _pack_rows(widths, ROW_INCHES)
    fig_w = max(sum(widths[i] for i in row) for row in rows)
    fig = plt.figure(figsize=(fig_w, 4.2 * len(rows)))
    outer = fig.add_gridspec(len(rows), 1)
    axes = []
    for r, row in enumerate(rows):
        ratios = [widths[i] for i in row]
        spare = fig_w - sum(ratios)  # an empty column keeps a short row's panels at their own width
        inner = outer[r].subgridspec(
            1, len(row) + (spare > 0.5), width_ratios=ratios + [spare] * (spare > 0.5)
        )
        axes += [fig.add_subplot(inner[0, c]) for c in range(len(row))]
    bar_w = 0.8 / len(series)
    for ax, (name, values) in zip(axes, panels, strict=True):
        x = np.arange(len(values))
        for j, (key, label) in enumerate(zip(series, labels, strict=True)):
            ys = [100.0 * float(values[v].get(key) or 0.0) for v in values]
            bars = ax.bar(x + (j - (len(series) - 1) / 2) * bar_w, ys, bar_w, label=label)
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(
            list(values),
            rotation=30 if len(values) > 3 else 0,
            ha="right" if len(values) > 3 else "center",
            fontsize=8,
        )
        ax.set_title(name)
        ax.set_ylabel("WER %")
        ax.margins(y=0.15)
    if len(series) > 1:
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper right", fontsize=8)
    fig.suptitle("WER (normalized) by group")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _from_trainer_state(run_dir: Path) -> Curves:
    best: list[dict[str, Any]] = []
    for p in run_dir.rglob("trainer_state.json"):
        try:
            hist = json.loads(p.read_text(encoding="utf-8")).get("log_history", [])
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", p, exc)
            continue
        if isinstance(hist, list) and len(hist) > len(best):
            best = hist
    curves: Curves = {}
    for entry in best:
        if not isinstance(entry, dict) or "step" not in entry:
            continue
        for k, v in entry.items():
            if k in ("step", "epoch") or not isinstance(v, int | float) or isinstance(v, bool):
                continue
            curves.setdefault(k, []).append((int(entry["step"]), float(v)))
    return curves


def _from_tensorboard(run_dir: Path) -> Curves:
    files = sorted(run_dir.rglob("events.out.tfevents.*"))
    if not files:
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: Curves = {}
    for f in files:
        try:
            acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
            acc.Reload()
            tags = acc.Tags().get("scalars", [])
        except Exception as exc:  # corrupt/partial event file: skip it, keep the others
            log.warning("ignoring unreadable TensorBoard file %s: %s", f, exc)
            continue
        for tag in tags:
            prefix, _, name = tag.partition("/")
            key = f"eval_{name}" if prefix == "eval" else (name if prefix == "train" else tag)
            curves.setdefault(key, []).extend((int(e.step), float(e.value)) for e in acc.Scalars(tag))
    return {k: sorted(v) for k, v in curves.items()}


def read_training_curves(run_dir: str | Path) -> Curves:
    """``name -> [(step, value)]`` (``loss``, ``eval_loss``, ``eval_wer``, ``learning_rate``...)."""
    root = Path(run_dir)
    if not root.is_dir():
        return {}
    curves = _from_trainer_state(root)
    if not any(k.startswith("eval_") for k in curves):
        tb = _from_tensorboard(root)
        if tb:
            curves = {**tb, **curves} if curves else tb
    return curves


def plot_training_curves(curves: Curves, path: str | Path, *, base_wer: float | None = None) -> Path | None:
    """Loss (train, eval) and eval WER against steps; None when there is nothing to draw."""
    loss_keys = [k for k in ("loss", "train_loss", "eval_loss") if len(curves.get(k, [])) > 0]
    wer_keys = [k for k in ("eval_wer", "eval_wer_ortho") if curves.get(k)]
    if not loss_keys and not wer_keys:
        return None
    plt = _plt()
    n = int(bool(loss_keys)) + int(bool(wer_keys))
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.8), squeeze=False)
    i = 0
    if loss_keys:
        ax = axes[0][i]
        for k in loss_keys:
            steps, vals = zip(*curves[k], strict=True)
            ax.plot(steps, vals, marker="." if len(steps) < 50 else None, label=k)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title("loss")
        ax.legend(fontsize=8)
        i += 1
    if wer_keys:
        ax = axes[0][i]
        for k in wer_keys:
            steps, vals = zip(*curves[k], strict=True)
            ax.plot(steps, [100 * v for v in vals], marker="o", label=k)
        if base_wer is not None:
            ax.axhline(100 * base_wer, color="grey", linestyle="--", label="base (test set)")
        ax.set_xlabel("step")
        ax.set_ylabel("WER %")
        ax.set_title("eval WER")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
