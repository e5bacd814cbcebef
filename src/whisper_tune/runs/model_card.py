"""The model card of an exported model: ``RUN/best/README.md``, read by the Hub and by people.

Why: ``best/`` is what gets shipped (to a colleague, to the Hub, to faster-whisper), and a model
without a card says nothing about what it was tuned from, on what, how good it is and whether
it forgot real speech. The card is built from the run's own files, never typed by hand:

- ``best/metrics.json``: validation WER of the exported weights, the guard verdict
  (``selection``: rule, guard WER vs base and its limit, WiSE-FT ``alpha``), the step;
- ``best/whisper_tune_config.yaml`` (the run's config): base model, language, task, strategy,
  data manifests;
- ``RUN/data_report.json``: how much training data was usable;
- ``RUN/eval/report.json`` when ``compare`` wrote one: test WER of base and tuned with the
  paired-bootstrap 95 % CI of the difference, and the guard row.

Its YAML front matter is ``huggingface_hub.ModelCardData`` (``model-index`` with the WER
results in percent, ``base_model`` as a hub id, ``language``, ``license``, ``tags``,
``datasets`` for ``hf://`` data), so the Hub renders the results and ``ModelCard.load`` parses
them back. It is written at export (``runs.export``), rewritten when the run's guard check
changes ``best/`` and after ``compare`` on the run, and on demand (``whisper-tune models card``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune.config import load_yaml
from whisper_tune.models.registry import BUNDLED

__all__ = ["CARD_FILE", "CardFacts", "build_model_card", "collect_card_facts", "write_model_card"]

log = logging.getLogger(__name__)

CARD_FILE = "README.md"
CONFIG_COPY = "whisper_tune_config.yaml"  # the run's config.yaml, copied into best/ at export
TASK_TYPE, TASK_NAME = "automatic-speech-recognition", "Automatic Speech Recognition"


@dataclass
class CardFacts:
    """Everything the card states, gathered from the run's files (``None``: the run does not say)."""

    model_name: str
    base_model: str  # as the run's config names it (a registry name, hub id or local dir)
    base_hub_id: str | None  # the hub id of the base, for the front matter
    language: str | None
    english_only: bool | None
    task: str = "transcribe"
    strategy: str | None = None
    train_data: list[str] = field(default_factory=list)
    eval_data: str | None = None
    guard_data: str | None = None
    usable_clips: int | None = None
    usable_hours: float | None = None
    skipped_clips: int | None = None
    step: int | None = None
    validation_wer: float | None = None
    base_validation_wer: float | None = None
    guard_wer: float | None = None
    base_guard_wer: float | None = None
    guard_limit: float | None = None
    rule: str | None = None
    alpha: float | None = None
    warning: str | None = None
    test: dict[str, Any] | None = None  # from RUN/eval/report.json
    stale_test: bool = False  # RUN/eval/report.json predates these weights
    has_ct2: bool = False

    @property
    def guard_ok(self) -> bool | None:
        if self.guard_wer is None or self.guard_limit is None:
            return None
        return self.guard_wer <= self.guard_limit + 1e-12


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _hub_id_of(name: str) -> str | None:
    from whisper_tune.models.hub import HUB_ID

    if name in BUNDLED:
        return BUNDLED[name].hub_id
    return name if HUB_ID.match(name) and not Path(name).expanduser().exists() else None


def _section(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    value = cfg.get(key)
    return value if isinstance(value, dict) else {}


def _test_results(report: dict[str, Any]) -> dict[str, Any] | None:
    """The compare report's test numbers (fractions), or None when it is not a comparison."""
    base, tuned = report.get("base"), report.get("tuned")
    if not (isinstance(base, dict) and isinstance(tuned, dict) and _num(tuned.get("wer")) is not None):
        return None
    raw_sig, raw_guard = report.get("significance"), report.get("guard")
    sig: dict[str, Any] = raw_sig if isinstance(raw_sig, dict) else {}
    guard = raw_guard if isinstance(raw_guard, dict) else None
    return {
        "data": str(tuned.get("data", "")),
        "utterances": report.get("utterances_compared"),
        "base_wer": _num(base.get("wer")),
        "tuned_wer": _num(tuned.get("wer")),
        "backend": tuned.get("backend"),
        "compute_type": tuned.get("compute_type"),
        "diff": _num(sig.get("diff")),
        "diff_low": _num(sig.get("diff_low")),
        "diff_high": _num(sig.get("diff_high")),
        "prob_improvement": _num(sig.get("prob_improvement")),
        "wer_difference_line": report.get("wer_difference_line"),
        "guard": guard,
    }


def collect_card_facts(best_dir: str | Path, run_dir: str | Path | None = None) -> CardFacts:
    """Read ``best_dir`` (and its run, default: the parent of ``best/``) into :class:`CardFacts`."""
    best = Path(best_dir)
    run = Path(run_dir) if run_dir is not None else best.parent
    metrics = _read_json(best / "metrics.json")
    cfg_file = best / CONFIG_COPY if (best / CONFIG_COPY).is_file() else run / "config.yaml"
    cfg = load_yaml(cfg_file) if cfg_file.is_file() else {}
    model, data, train = _section(cfg, "model"), _section(cfg, "data"), _section(cfg, "train")
    base = str(model.get("name") or "unknown")
    reg = BUNDLED.get(base)
    raw_sel = metrics.get("selection")
    sel: dict[str, Any] = raw_sel if isinstance(raw_sel, dict) else {}
    train_src = data.get("train")
    facts = CardFacts(
        model_name=run.name if run_dir is not None or best.name == "best" else best.name,
        base_model=base,
        base_hub_id=_hub_id_of(base),
        language=str(model["language"])
        if model.get("language")
        else ("en" if reg and reg.english_only else None),
        english_only=reg.english_only if reg else None,
        task=str(model.get("task") or "transcribe"),
        strategy=str(train["strategy"]) if train.get("strategy") else None,
        train_data=[str(x) for x in train_src]
        if isinstance(train_src, list)
        else [str(train_src)]
        if train_src
        else [],
        eval_data=str(data["eval"]) if data.get("eval") else None,
        guard_data=str(data["guard"]) if data.get("guard") else None,
        step=int(metrics["step"]) if isinstance(metrics.get("step"), int | float) else None,
        validation_wer=_num(sel.get("eval_wer"))
        if _num(sel.get("eval_wer")) is not None
        else _num(metrics.get("eval_wer")),
        base_validation_wer=_num(sel.get("base_eval_wer")),
        guard_wer=_num(sel.get("guard_wer")) if sel else _num(metrics.get("guard_wer")),
        base_guard_wer=_num(sel.get("base_guard_wer")) if sel else _num(metrics.get("base_guard_wer")),
        guard_limit=_num(sel.get("guard_limit")) if sel else _num(metrics.get("guard_limit")),
        rule=str(sel["rule"]) if sel.get("rule") else None,
        alpha=_num(metrics.get("interpolation_alpha"))
        if "interpolation_alpha" in metrics
        else _num(sel.get("alpha")),
        warning=str(sel["warning"]) if sel.get("warning") else None,
        has_ct2=(best / "ct2" / "model.bin").is_file(),
    )
    report = _read_json(run / "data_report.json")
    if report:
        facts.usable_clips = report.get("usable") if isinstance(report.get("usable"), int) else None
        facts.usable_hours = _num(report.get("usable_hours"))
        facts.skipped_clips = (
            report.get("skipped_total") if isinstance(report.get("skipped_total"), int) else None
        )
        sources = report.get("sources")
        if isinstance(sources, list) and sources and not facts.train_data:
            facts.train_data = [str(s) for s in sources]
    compared = run / "eval" / "report.json"
    if compared.is_file() and compared.stat().st_mtime >= _weights_mtime(best):
        facts.test = _test_results(_read_json(compared))
    elif compared.is_file():  # a comparison of earlier weights (re-export, WiSE-FT mix) says nothing
        facts.stale_test = True
    return facts


def _weights_mtime(best: Path) -> float:
    """When the weights in ``best`` were written (0 when there are none)."""
    times = [f.stat().st_mtime for f in best.glob("model*.safetensors")]
    return max(times, default=0.0)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f} %"


def _pct_value(x: float) -> float:
    """WER in percent for ``model-index`` (the Hub's convention for Whisper), 4 decimals."""
    return round(x * 100.0, 4)


def _dataset(ref: str | None, fallback: str) -> tuple[str, str]:
    """(dataset_type, dataset_name) for ``model-index``: an ``hf://`` id, else the manifest's name."""
    if ref and ref.startswith("hf://"):
        repo = ref[len("hf://") :].split(":")[0]
        return repo, repo
    return "custom", Path(ref).name if ref else fallback


def _hf_datasets(facts: CardFacts) -> list[str] | None:
    refs = [*facts.train_data, facts.eval_data or ""]
    ids = sorted({r[len("hf://") :].split(":")[0] for r in refs if r.startswith("hf://")})
    return ids or None


def _eval_results(facts: CardFacts) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []

    def add(value: float | None, ref: str | None, split: str, name: str, fallback: str) -> None:
        if value is None:
            return
        dtype, dname = _dataset(ref, fallback)
        out.append(
            EvalResult(
                task_type=TASK_TYPE,
                task_name=TASK_NAME,
                dataset_type=dtype,
                dataset_name=dname,
                dataset_split=split,
                metric_type="wer",
                metric_name=name,
                metric_value=_pct_value(value),
            )
        )

    if facts.test is not None:
        add(facts.test["tuned_wer"], facts.test["data"], "test", "Test WER (normalized, %)", "test set")
    add(
        facts.validation_wer,
        facts.eval_data,
        "validation",
        "Validation WER (normalized, %)",
        "validation set",
    )
    add(
        facts.guard_wer,
        facts.guard_data,
        "guard",
        "Real-speech guard WER (normalized, %)",
        "real-speech guard",
    )
    return out


def _front_matter(facts: CardFacts) -> Any:
    from huggingface_hub import ModelCardData

    openai_base = bool(facts.base_hub_id and facts.base_hub_id.startswith("openai/"))
    tags = ["whisper", "whisper-tune", "automatic-speech-recognition", "fine-tuned"]
    if facts.has_ct2:
        tags.append("ctranslate2")
    return ModelCardData(
        model_name=facts.model_name,
        base_model=facts.base_hub_id,
        language=[facts.language] if facts.language else None,
        license="apache-2.0"
        if openai_base
        else None,  # the license of OpenAI's Whisper checkpoints on the Hub
        library_name="transformers",
        pipeline_tag="automatic-speech-recognition",
        tags=tags,
        datasets=_hf_datasets(facts),
        metrics=["wer"],
        eval_results=_eval_results(facts) or None,
    )


def _guard_lines(f: CardFacts) -> list[str]:
    if f.guard_wer is None:
        return [
            "No real-speech guard was scored for this run (`data.guard: none`): nothing says whether it forgot general speech.",
            "",
        ]
    verdict = {True: "within", False: "**over**", None: "n/a vs"}[f.guard_ok]
    lines = [
        f"Real-speech guard (`{_data_label(f.guard_data or 'builtin')}`): WER {_pct(f.guard_wer)} vs the base model's "
        f"{_pct(f.base_guard_wer)}; {verdict} the limit {_pct(f.guard_limit)}.",
        "",
    ]
    if f.rule:
        lines += [f"Export rule: {f.rule}.", ""]
    if f.alpha is not None and f.alpha < 1.0:
        lines += [
            f"WiSE-FT: these weights are `{f.alpha:g} x tuned + {1 - f.alpha:g} x base` (weight interpolation "
            "with the base model, because no checkpoint kept the guard WER within the limit).",
            "",
        ]
    else:
        lines += [
            "WiSE-FT alpha: 1 (the checkpoint's own weights, no interpolation with the base model).",
            "",
        ]
    if f.warning:
        lines += [f"> {f.warning}", ""]
    return lines


def _data_label(ref: str) -> str:
    """``hf://`` ids as they are, local manifests by file name (no local directory layout on the Hub)."""
    return ref if ref.startswith("hf://") or ref == "builtin" else Path(ref).name


def _body(f: CardFacts) -> str:
    base = (
        f"[`{f.base_hub_id}`](https://huggingface.co/{f.base_hub_id})"
        if f.base_hub_id
        else f"`{f.base_model}`"
    )
    lines = [
        f"# {f.model_name}",
        "",
        f"Whisper fine-tuned with whisper-tune from {base}"
        + (f" (registry name `{f.base_model}`)" if f.base_model in BUNDLED else "")
        + f"; task `{f.task}`"
        + (f", language `{f.language}`" if f.language else "")
        + (f", strategy `{f.strategy}`" if f.strategy else "")
        + ".",
        "",
        "## Training data",
        "",
    ]
    data = ", ".join(f"`{_data_label(d)}`" for d in f.train_data) or "not recorded"
    lines.append(f"- train: {data}")
    if f.usable_clips is not None:
        hours = f", {f.usable_hours:.2f} h" if f.usable_hours is not None else ""
        lines.append(
            f"- usable clips: {f.usable_clips}{hours} ({f.skipped_clips or 0} skipped, see the run's data_report.md)"
        )
    lines += [f"- validation: `{_data_label(f.eval_data)}`" if f.eval_data else "- validation: none", ""]
    lines += [
        "## Results",
        "",
        "| set | base WER | this model's WER | difference (95 % CI) |",
        "|---|---|---|---|",
    ]
    t = f.test
    if t is not None:
        ci = (
            f"{t['diff'] * 100:+.2f} pts [{t['diff_low'] * 100:+.2f}, {t['diff_high'] * 100:+.2f}]"
            if None not in (t["diff"], t["diff_low"], t["diff_high"])
            else "n/a"
        )
        lines.append(
            f"| test `{Path(t['data']).name}` ({t['utterances']} utt.) | {_pct(t['base_wer'])} | {_pct(t['tuned_wer'])} | {ci} |"
        )
    lines.append(f"| validation | {_pct(f.base_validation_wer)} | {_pct(f.validation_wer)} | |")
    lines.append(f"| real-speech guard | {_pct(f.base_guard_wer)} | {_pct(f.guard_wer)} | |")
    lines.append("")
    if t is not None:
        scored = f" (scored on `{t['backend']}` {t['compute_type']})" if t.get("backend") else ""
        prob = (
            f", P(improvement) {t['prob_improvement']:.3f}" if t.get("prob_improvement") is not None else ""
        )
        lines += [
            f"Test numbers from `whisper-tune compare` (RUN/eval/report.json){scored}: {t.get('wer_difference_line') or ''}"
            f"; paired bootstrap over utterances{prob}. WER is normalized (Whisper's English normalizer).",
            "",
        ]
    else:
        lines += [
            (
                "The last comparison (RUN/eval/report.json) predates these weights; no"
                if f.stale_test
                else "No"
            )
            + " test-set comparison yet: run `whisper-tune compare --base BASE --tuned RUN --data TEST`"
            " (the card is updated).",
            "",
        ]
    lines += ["## Forgetting guard", "", *_guard_lines(f)]
    lines += [
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'asr = pipeline("automatic-speech-recognition", model="PATH_OR_REPO_ID")',
        'print(asr("call.wav")["text"])',
        "```",
        "",
    ]
    if f.has_ct2:
        lines += [
            "The `ct2/` folder is the CTranslate2 export (faster-whisper, `whisper-tune serve --backend ct2`):",
            "",
            "```python",
            "from faster_whisper import WhisperModel",
            "",
            'segments, info = WhisperModel("PATH/ct2", compute_type="int8").transcribe("call.wav")',
            "```",
            "",
        ]
    if f.step is not None:
        lines += [f"Exported from training step {f.step}.", ""]
    return "\n".join(lines)


def build_model_card(facts: CardFacts) -> Any:
    """A ``huggingface_hub.ModelCard``: ``ModelCardData`` front matter + the Markdown body."""
    from huggingface_hub import ModelCard

    return ModelCard(f"---\n{_front_matter(facts).to_yaml()}\n---\n\n{_body(facts)}\n")


def write_model_card(best_dir: str | Path, run_dir: str | Path | None = None) -> Path:
    """Write (or rewrite) ``best_dir/README.md`` from the run's files; returns its path."""
    best = Path(best_dir)
    card = build_model_card(collect_card_facts(best, run_dir))
    path = best / CARD_FILE
    path.write_text(str(card), encoding="utf-8")
    log.info("model card written to %s", path)
    return path
