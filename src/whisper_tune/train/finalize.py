"""The run's last step on the driver: make ``best/`` a model that does not forget, and say how.

Why: training ranks checkpoints by the guard bound (``train/guard.py``), measured at the
training context; what ships is ``best/`` (restored to the 30 s context, decoded the way
``serve`` decodes). So this step scores the exported weights and the base model on the eval
subset and the guard through the shared inference path and keeps the export when its guard WER
is within ``base guard WER x (1 + run.guard_tolerance)``. When it is not, the best checkpoint
forgot, and shipping it silently would hurt real callers: the step warns loudly and mixes the
exported weights with the base weights (WiSE-FT, ``models.interpolate``), trying
``run.interpolation_alphas`` from most to least tuned and keeping the first mix whose guard WER
meets the bound (alpha 0 is the base model itself, so one always does). Candidates are scored on
the driver through the shared inference path (``whisper_tune.inference``: the decoding that
``evaluate`` and ``serve`` use), on the eval subset and the guard, base included, so the
comparison is like with like. The outcome -- rule, alpha, eval and guard WER of the export, the
trials -- goes into ``best/metrics.json`` (``selection``) and ``status.json``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from whisper_tune.data import load_audio, load_manifest
from whisper_tune.inference import BackendOptions, FeatureBank, HFBackend, transcribe_audios
from whisper_tune.models import load_model
from whisper_tune.models.interpolate import interpolate_weights
from whisper_tune.runs import RunDir
from whisper_tune.runs.model_card import write_model_card
from whisper_tune.scoring import error_rates
from whisper_tune.train.config import JobConfig
from whisper_tune.train.guard import guard_enabled, resolve_guard_manifest
from whisper_tune.train.guard_select import GuardBound, Selection, choose_alpha

__all__ = ["finalize_export", "score_model"]

log = logging.getLogger(__name__)


def _clips(manifest: str, limit: int | None) -> tuple[list[Any], list[str]]:
    samples = load_manifest(manifest).samples[: limit or None]
    return [load_audio(s.audio) for s in samples], [s.text for s in samples]


def score_model(
    model: Any, processor: Any, sets: dict[str, tuple[FeatureBank, list[str]]]
) -> dict[str, float]:
    """Normalized WER of an in-memory model on each ``name -> (clips, references)``.

    Always in the weights' fp32: scored in bf16, the same mixes read 1-2 guard errors apart
    (tiny.en, 59 clips: alpha 0.5 3.21 % fp32 vs 3.74 % bf16), enough to flip the bound.
    """
    backend = HFBackend(model, processor, "candidate", BackendOptions(batch_size=16))
    out = {}
    for name, (bank, refs) in sets.items():
        hyps = [t.text for t in transcribe_audios(backend, bank)]
        out[name] = float(error_rates(refs, hyps)["wer"])
    return out


def finalize_export(cfg: JobConfig, run_dir: Path, best_dir: Path, metrics: dict[str, Any]) -> Selection:
    """Check ``best_dir`` (just exported from the best checkpoint) against the guard; mix if needed."""
    step = metrics.get("step")
    sel = Selection(checkpoint_step=int(step) if isinstance(step, (int, float)) else None)
    sel.eval_wer = _num(metrics.get("eval_wer"))
    sel.guard_wer = _num(metrics.get("guard_wer"))
    sel.base_guard_wer = _num(metrics.get("base_guard_wer"))
    sel.guard_limit = _num(metrics.get("guard_limit"))
    if not guard_enabled(cfg.data.guard):
        sel.rule = "lowest eval_wer (no real-speech guard: data.guard none)"
    else:
        sel = _verify(cfg, best_dir, sel, trained_ok=metrics.get("guard_ok"))
    _record(best_dir, sel)
    RunDir(run_dir).write_status("finalizing", selection=sel.to_dict())
    return sel


def _verify(cfg: JobConfig, best_dir: Path, sel: Selection, *, trained_ok: Any) -> Selection:
    """Score the exported weights and the base on eval + guard (full context, the served decode);
    keep them when they meet the bound, else search the WiSE-FT mixes.

    The training-time ``guard_ok`` ranks checkpoints; this check decides the export, on the very
    weights ``best/`` holds (after a shortened training context was restored to 30 s).
    """
    t0 = time.perf_counter()
    guard = resolve_guard_manifest(cfg.data.guard, cfg.data.max_guard_samples)
    assert guard is not None  # guard_enabled(data.guard) here
    sets = {}
    for name, manifest, limit in (("eval", cfg.data.eval, cfg.data.max_eval_samples), ("guard", guard, None)):
        audios, refs = _clips(manifest, limit)
        sets[name] = (FeatureBank(audios), refs)
    base, processor = load_model(cfg.model.name)
    tuned, _ = load_model(str(best_dir))
    base_scores = score_model(base, processor, sets)
    guard_only = {"guard": sets["guard"]}
    tuned_scores = score_model(tuned, processor, guard_only)  # eval only if admissible
    bound = GuardBound(base_scores["guard"], cfg.run.guard_tolerance)
    sel.base_eval_wer, sel.base_guard_wer, sel.guard_limit = (
        base_scores["eval"],
        base_scores["guard"],
        bound.limit,
    )
    sel.guard_wer = tuned_scores["guard"]
    if bound.ok(tuned_scores["guard"]):
        sel.eval_wer = score_model(tuned, processor, {"eval": sets["eval"]})["eval"]
        sel.rule = "guard-admissible checkpoint with the lowest eval_wer (verified on the exported weights)"
        if trained_ok is not None and float(trained_ok) < 0.5:
            sel.rule += "; no checkpoint met the bound at the training context"
        log.info(
            "export meets the real-speech guard bound: guard WER %.2f %% (base %.2f %%), %.0f s",
            100 * sel.guard_wer,
            100 * sel.base_guard_wer,
            time.perf_counter() - t0,
        )
        return sel
    warning = (
        f"NO checkpoint kept real-speech (guard) WER within the bound: the best checkpoint has "
        f"{_pct(sel.guard_wer)} vs base {_pct(sel.base_guard_wer)} (limit {_pct(sel.guard_limit)}). "
        "Mixing its weights with the base model's (WiSE-FT)."
    )
    log.warning("!" * 8 + " " + warning)
    mixes: dict[float, Any] = {}

    def mix(alpha: float) -> Any:
        if alpha not in mixes:
            mixes.clear()  # one mix in memory at a time
            mixes[alpha] = interpolate_weights(base, tuned, alpha)
        return mixes[alpha]

    def guard_of(alpha: float) -> float:
        return score_model(mix(alpha), processor, guard_only)["guard"]

    def eval_of(alpha: float) -> float:
        return score_model(mix(alpha), processor, {"eval": sets["eval"]})["eval"]

    alpha, trials = choose_alpha(guard_of, eval_of, bound, alphas=list(cfg.run.interpolation_alphas))
    # the admissible mix was scored last and is still in memory; alpha 0: no mix met the bound
    chosen = mixes[alpha] if alpha in mixes else interpolate_weights(base, tuned, alpha, inplace=True)
    chosen.save_pretrained(best_dir)
    match = next((t for t in trials if t.alpha == alpha), None)
    sel.rule = "no admissible checkpoint: base/tuned weight interpolation (WiSE-FT), largest admissible alpha"
    sel.alpha = alpha
    sel.trials = trials
    sel.eval_wer = match.eval_wer if match else base_scores["eval"]
    sel.guard_wer = match.guard_wer if match else base_scores["guard"]
    sel.warning = warning + (
        f" Exported alpha {alpha:g}: eval WER {_pct(sel.eval_wer)}, guard WER {_pct(sel.guard_wer)}"
        f" ({time.perf_counter() - t0:.0f} s)."
        if alpha > 0
        else " No mix met the bound: best/ holds the BASE model's weights."
    )
    log.warning("!" * 8 + " " + sel.warning)
    return sel


def _record(best_dir: Path, sel: Selection) -> None:
    path = best_dir / RunDir.METRICS_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data["selection"] = sel.to_dict()
    data["interpolation_alpha"] = sel.alpha
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    write_model_card(best_dir, best_dir.parent)  # the card states the guard verdict and the alpha


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"
