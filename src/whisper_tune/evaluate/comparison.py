"""Base vs tuned on the same audio, with the evidence: CI, prompt baseline, guard, selection.

Why a module of its own: ``compare`` is the product's proof (or disproof) of the gain. Both
models decode the same feature bank through the shared inference path; the base model also
decodes with the domain terms as its initial prompt (does tuning beat prompting?); both decode
the real-speech guard (did tuning hurt real callers?); the tuned run's own export rule is read
from its ``best/metrics.json``. ``report.md``/``report.json``/``report.html`` carry all of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from whisper_tune.inference import FeatureBank
from whisper_tune.runs import resolve_model_spec
from whisper_tune.scoring.redact import redact_obj, redact_text
from whisper_tune.scoring.wer import resolve_normalizer

from .html import REPORT_HTML, write_report_html
from .markdown import render_comparison
from .pipeline import _find_terms, _run_dir_of, _run_model, load_eval_items
from .plots import plot_training_curves, plot_wer_by_group, read_training_curves
from .report import ComparisonResult, resolve_group_fields

__all__ = ["compare", "prompt_text", "write_comparison"]

log = logging.getLogger(__name__)


def compare(
    base_spec: str,
    tuned_spec: str,
    data: str | Path | Sequence[Any],
    out_dir: str | Path,
    *,
    domain_terms: str | Path | None = None,
    train_log: str | Path | None = None,
    group_by: Sequence[str] | None = None,
    batch_size: int = 8,
    device: str = "auto",
    normalizer: str = "whisper_en",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    language: str | None = None,
    limit: int | None = None,
    worst_n: int = 10,
    print_line: bool = True,
    backend: str = "hf",
    precision: str = "auto",
    guard: str | Path | None = None,
    prompt_baseline: str | None = None,
    longform: str | Path | None = None,
    longform_modes: Sequence[str] = ("sequential", "chunked"),
    redact: bool = False,
    speech_times: bool = True,
    split_pause_s: float = 0.5,
) -> ComparisonResult:
    """Base vs tuned over the same audio; writes report.md, report.json, PNGs, base/ and tuned/.

    Both models run on ``backend`` in ``precision`` (see ``evaluate``).

    Prints the seed's ``WER difference: -x.xxx %`` line (``print_line``). ``train_log``
    defaults to the tuned spec when that is a run directory.

    ``guard``: a real-speech manifest scored with both models beside ``data`` (the report's guard
    row; ``None``: the report says "no real-speech guard"). ``prompt_baseline``: an initial
    prompt (``"terms"``: the domain terms, comma-separated) with which the *base* model also
    decodes ``data``, so the report shows whether tuning beats prompting. ``longform``,
    ``longform_modes``, ``speech_times``, ``split_pause_s``, ``redact``: as for ``evaluate`` (the long-form section is base vs tuned).
    """
    resolve_normalizer(normalizer)
    items, skipped = load_eval_items(data, limit=limit)
    fields = resolve_group_fields([it.meta for it in items], group_by)
    terms = _find_terms(data, domain_terms)
    bank = FeatureBank([it.audio for it in items])
    common: dict[str, Any] = dict(
        data_name=str(data) if isinstance(data, str | Path) else "<samples>",
        normalizer=normalizer,
        group_fields=fields,
        terms=terms,
        skipped=skipped,
        batch_size=batch_size,
        device=device,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        language=language,
        backend=backend,
        precision=precision,
    )
    base = _run_model(base_spec, items, bank, **common)
    tuned = _run_model(tuned_spec, items, bank, **common)
    run_dir = str(train_log) if train_log is not None else _run_dir_of(tuned_spec)
    cmp = ComparisonResult(base=base, tuned=tuned, run_dir=run_dir)
    prompt = prompt_text(prompt_baseline, terms)
    if prompt:
        cmp.prompt_baseline = _run_model(base_spec, items, bank, **{**common, "prompt": prompt})
    if guard is not None:
        g_items, g_skipped = load_eval_items(str(guard))
        g_bank = FeatureBank([it.audio for it in g_items])
        g_common = {
            **common,
            "data_name": str(guard),
            "group_fields": [],
            "terms": None,
            "skipped": g_skipped,
        }
        cmp.guard = ComparisonResult(
            base=_run_model(base_spec, g_items, g_bank, **g_common),
            tuned=_run_model(tuned_spec, g_items, g_bank, **g_common),
        )
    else:
        cmp.guard_note = "no real-speech guard (pass --guard MANIFEST, or the run's data.guard)"
    cmp.selection = _selection_of(tuned_spec)
    if longform is not None:
        from .longform import compare_longform

        cmp.longform = compare_longform(
            base_spec, tuned_spec, longform, modes=longform_modes, normalizer=normalizer,
            batch_size=batch_size, device=device, num_beams=num_beams, max_new_tokens=max_new_tokens,
            language=language, precision=precision if backend == "hf" else "auto",
            speech_times=speech_times, split_pause_s=split_pause_s,
        )  # fmt: skip
    base.redact = tuned.redact = redact
    cmp = write_comparison(cmp, out_dir, worst_n=worst_n)
    if print_line:
        print(cmp.wer_difference_line(), flush=True)
    return cmp


PROMPT_MAX_TERMS = 60  # a Whisper prompt keeps at most ~223 tokens; 60 terms fit comfortably


def prompt_text(prompt: str | None, terms: Sequence[str] | None) -> str | None:
    """The prompt baseline's text: ``"terms"`` -> the domain terms joined with commas."""
    if not prompt:
        return None
    if prompt.strip().lower() == "terms":
        if not terms:
            log.info("prompt baseline skipped: no domain terms (pass --domain-terms FILE)")
            return None
        return ", ".join(list(terms)[:PROMPT_MAX_TERMS])
    return prompt


def _selection_of(tuned_spec: str) -> dict[str, Any] | None:
    """How the tuned run chose its export (``best/metrics.json`` ``selection``), if it says."""
    path = Path(resolve_model_spec(tuned_spec)) / "metrics.json"
    if not path.is_file():
        return None
    try:
        sel = json.loads(path.read_text(encoding="utf-8")).get("selection")
    except ValueError:
        return None
    return sel if isinstance(sel, dict) else None


def write_comparison(cmp: ComparisonResult, out_dir: str | Path, *, worst_n: int = 10) -> ComparisonResult:
    """report.md, report.json, wer_by_group.png, training_curves.png (with a run dir), base/, tuned/."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base, tuned, run_dir = cmp.base, cmp.tuned, cmp.run_dir
    cmp.out_dir = out
    files: dict[str, Path] = {}
    for name, res in (("base", base), ("tuned", tuned)):
        for k, p in res.write(out / name).items():
            files[f"{name}_{k}"] = p
    gt = {
        k: {v: {"base": g["base_wer"], "tuned": g["tuned_wer"]} for v, g in vals.items()}
        for k, vals in cmp.group_table().items()
    }
    plots = {
        "WER by group": plot_wer_by_group(
            gt,
            out / "wer_by_group.png",
            overall={"base": base.wer, "tuned": tuned.wer},
            series=("base", "tuned"),
            labels=("base", "tuned"),
        )
    }
    note = ""
    if run_dir is not None:
        curves = read_training_curves(run_dir)
        curve_png = (
            plot_training_curves(curves, out / "training_curves.png", base_wer=base.wer) if curves else None
        )
        if curve_png is not None:
            plots["Training curves"] = curve_png
            note = (
                f"Training curves from `{run_dir}`; `eval_wer` is on the training run's validation split, "
                "the dashed line is the base model on this test set."
            )
        else:
            note = (
                f"No training curves found under `{run_dir}` (no trainer_state.json or TensorBoard events)."
            )
    files.update({k.lower().replace(" ", "_"): v for k, v in plots.items()})
    md, js = out / "report.md", out / "report.json"
    files["report_md"], files["report_json"], files["report_html"] = md, js, out / REPORT_HTML
    cmp.files = files
    scrub = cmp.base.redact
    text = render_comparison(cmp, plots, out, note, worst_n)
    md.write_text((redact_text(text) if scrub else text) + "\n", encoding="utf-8")
    report = redact_obj(cmp.to_dict()) if scrub else cmp.to_dict()
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    write_report_html(json.loads(js.read_text(encoding="utf-8")), out, plots)  # the dict report.json holds
    return cmp
