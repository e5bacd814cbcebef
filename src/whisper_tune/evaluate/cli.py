"""``whisper-tune evaluate`` and ``whisper-tune compare``.

Why: the two questions a user asks after training — "how good is this model on my data?"
and "did tuning help, where, and by how much?" — each get one command. Without ``--out``,
results go to ``RUN/eval`` when the (tuned) model is a run directory, else to
``./eval-<model name>`` / ``./compare-report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from whisper_tune.errors import UserError
from whisper_tune.scoring.normalizers import NORMALIZER_KINDS
from whisper_tune.scoring.redact import redacting_logs

__all__ = ["register"]


def _fields(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [f.strip() for f in text.split(",") if f.strip()]


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True, help="test manifest (NeMo JSONL, CSV/TSV, audiofolder dir, hf://...)"
    )
    p.add_argument("--out", default=None, help="output directory")
    p.add_argument(
        "--group-by",
        default=None,
        help="comma-separated manifest fields to break WER down by (default: every categorical field)",
    )
    p.add_argument("--batch-size", type=_positive, default=8)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--normalizer", default="whisper_en", choices=NORMALIZER_KINDS)
    p.add_argument(
        "--domain-terms",
        default=None,
        help="file with one domain term per line (default: domain_terms.txt next to the manifest, if any)",
    )
    p.add_argument("--num-beams", type=_positive, default=1, help="1 = greedy (the default, like the seed)")
    p.add_argument(
        "--max-new-tokens",
        type=_positive,
        default=None,
        help="cap on generated tokens per 30 s window (default: 8 per second of audio + 16, at most 224)",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "hf", "ct2"),
        default="auto",
        help="what runs the model, as `serve --backend` does: hf (Transformers), ct2 (CTranslate2: the "
        "export itself, int8 on CPU / float16 on GPU) or auto (default: ct2 for a CTranslate2 dir such as "
        "RUN/best/ct2, else hf; compare: decided by --tuned, used for both)",
    )
    p.add_argument(
        "--compute-type",
        default="auto",
        help="number format, as serve's --compute-type (ct2: int8, int8_float16, float16, ...) or --dtype "
        "(hf: float32, float16, bfloat16); auto (default): what serve picks on this device",
    )
    p.add_argument(
        "--language",
        default=None,
        help="language of the audio for multilingual models (default: en with the whisper_en normalizer)",
    )
    p.add_argument("--limit", type=_positive, default=None, help="only the first N utterances")
    p.add_argument(
        "--longform",
        default=None,
        help="manifest of long recordings (> 30 s; optional 'segments' with reference times, e.g. data "
        "synth --calls' longform.jsonl) decoded whole into a long-form section",
    )
    p.add_argument(
        "--longform-modes",
        type=_modes,
        default=("sequential", "chunked"),
        help="comma-separated: sequential (Transformers long-form generate), chunked (batched windows)",
    )
    p.add_argument(
        "--speech-times",
        choices=("on", "off"),
        default="on",
        help="long-form segment times moved onto the speech they cover, as the server returns them "
        "(Silero VAD; the model's own timestamps are scored beside them); off: the model's own only",
    )
    p.add_argument(
        "--split-pause",
        type=float,
        default=0.5,
        help="with --speech-times on: a pause of at least this many seconds between two words cuts a "
        "long-form segment there (default 0.5, stable-ts' gap; lower values split more turns and more "
        "sentences, docs/evaluate.md)",
    )
    p.add_argument(
        "--redact",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mask card/account/phone numbers and e-mail addresses in predictions, reports and logs "
        "(default: report.redact of the run's config.yaml, else off)",
    )


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in ("sequential", "chunked")]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"expected sequential and/or chunked, got {text!r}")
    return modes


def _longform_of(args: argparse.Namespace, spec: str) -> Any:
    """``evaluate --longform``: the long-form result of ``spec`` (None without the option)."""
    if args.longform is None:
        return None
    from .longform import evaluate_longform

    if not Path(args.longform).exists():
        raise UserError(f"--longform {args.longform}: no such file")
    return evaluate_longform(
        spec, args.longform, modes=args.longform_modes, normalizer=args.normalizer,
        batch_size=args.batch_size, device=args.device, num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens, language=args.language,
        speech_times=args.speech_times == "on", split_pause_s=args.split_pause,
    )  # fmt: skip


def _redacted(run: Any, spec_attr: str) -> Any:
    """``run`` with ``args.redact`` resolved (``--redact``, else ``report.redact`` in the run's
    ``config.yaml``, else off) and, when on, every log line written meanwhile redacted."""

    def wrapped(args: argparse.Namespace) -> int:
        args.redact = _redact_for(args.redact, getattr(args, spec_attr))
        with redacting_logs(args.redact):
            return int(run(args))

    return wrapped


def _redact_for(value: bool | None, spec: str) -> bool:
    if value is not None:
        return value
    from whisper_tune.config import load_yaml
    from whisper_tune.runs import run_of_model_spec

    run = run_of_model_spec(spec)
    cfg = run.join("config.yaml") if run is not None else None
    report = load_yaml(cfg).get("report", {}) if isinstance(cfg, Path) and cfg.is_file() else {}
    return bool(report.get("redact", False)) if isinstance(report, dict) else False


def _default_out(spec: str, fallback: str) -> Path:
    """``RUN/eval`` when ``spec`` is a local run with ``best/``, else ``fallback``."""
    from whisper_tune.runs import run_of_model_spec

    run = run_of_model_spec(spec)
    if run is not None and isinstance(run.path, Path):
        return run.path / run.EVAL_DIR
    return Path(fallback)


def _check_inputs(data: str, *specs: str) -> None:
    if not data.startswith("hf://") and not Path(data).exists():
        raise UserError(f"--data {data}: no such file or directory")
    for s in specs:
        if s.strip() == "":
            raise UserError("model spec is empty")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import evaluate

    _check_inputs(args.data, args.model)
    out = Path(args.out) if args.out else _default_out(args.model, f"eval-{Path(args.model).name or 'model'}")
    r = evaluate(
        args.model,
        args.data,
        out,
        longform=_longform_of(args, args.model),
        redact=args.redact,
        group_by=_fields(args.group_by),
        batch_size=args.batch_size,
        device=args.device,
        normalizer=args.normalizer,
        domain_terms=args.domain_terms,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        language=args.language,
        limit=args.limit,
        backend=args.backend,
        precision=args.compute_type,
    )
    print(f"scored: {r.backend} {r.compute_type} on {r.device}: {r.artifact}")
    print(
        f"WER {r.wer:.4f} (normalized), {r.wer_ortho:.4f} (orthographic), CER {r.cer:.4f} "
        f"over {len(r.utterances)} utterances ({len(r.skipped)} skipped)"
    )
    if r.domain_terms is not None:
        print(
            f"domain-term recall {r.domain_terms.recall:.4f} ({r.domain_terms.found}/{r.domain_terms.occurrences})"
        )
    print(f"report: {out / 'report.md'}")
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from whisper_tune.runs import RunDir

    from .comparison import compare
    from .pipeline import served_backend

    _check_inputs(args.data, args.base, args.tuned)
    backend = served_backend(args.tuned, args.backend)  # one backend for both: like with like
    guard = _guard_for(args.guard, args.tuned)
    run = RunDir(args.run) if args.run is not None else None
    if run is not None and not run.exists():
        raise UserError(f"--run {args.run}: not a directory")
    out = Path(args.out) if args.out else _default_out(args.tuned, "compare-report")
    c = compare(
        args.base,
        args.tuned,
        args.data,
        out,
        longform=args.longform,
        longform_modes=args.longform_modes,
        speech_times=args.speech_times == "on",
        split_pause_s=args.split_pause,
        redact=args.redact,
        domain_terms=args.domain_terms,
        train_log=run.local_copy() if run is not None else None,  # a URI: its copy without checkpoints
        group_by=_fields(args.group_by),
        batch_size=args.batch_size,
        device=args.device,
        normalizer=args.normalizer,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        language=args.language,
        limit=args.limit,
        print_line=False,
        backend=backend,
        precision=args.compute_type,
        guard=guard,
        prompt_baseline=None if args.prompt_baseline == "none" else args.prompt_baseline,
    )
    for name, res in (("base", c.base), ("tuned", c.tuned)):
        print(f"{name} scored: {res.backend} {res.compute_type} on {res.device}: {res.artifact}")
    print(f"base  WER {c.base.wer:.2%}  ({c.base.model})")
    if c.prompt_baseline is not None:
        print(f"base + prompt WER {c.prompt_baseline.wer:.2%}")
    print(f"tuned WER {c.tuned.wer:.2%}  ({c.tuned.model})")
    print(c.wer_difference_line())
    print(c.ci_line())
    if c.guard is not None:
        print(f"real-speech guard WER {c.guard.base.wer:.2%} -> {c.guard.tuned.wer:.2%}  ({guard})")
    else:
        print(c.guard_note)
    print(f"report: {out / 'report.md'}")
    _refresh_card(args.tuned, out)
    return 0


def _refresh_card(tuned: str, out: Path) -> None:
    """A local tuned run compared into ``RUN/eval``: its model card gets the test numbers."""
    from whisper_tune.runs import run_of_model_spec
    from whisper_tune.runs.model_card import write_model_card

    run = run_of_model_spec(tuned)
    if run is None or not isinstance(run.path, Path) or out.resolve() != (run.path / run.EVAL_DIR).resolve():
        return
    best = run.path / run.BEST_DIR
    if (best / "config.json").is_file():
        print(f"model card: {write_model_card(best, run.path)}")


def _guard_for(value: str, tuned: str) -> str | None:
    """``--guard``: ``auto`` = the tuned run's ``data.guard`` (built-in guard for a plain model dir)."""
    from whisper_tune.config import load_yaml
    from whisper_tune.runs import run_of_model_spec
    from whisper_tune.train.guard import resolve_guard_manifest

    if value == "auto":
        run = run_of_model_spec(tuned)
        cfg = run.join("config.yaml") if run is not None else None
        data = load_yaml(cfg).get("data", {}) if isinstance(cfg, Path) and cfg.is_file() else {}
        value = str(data.get("guard", "builtin")) if isinstance(data, dict) else "builtin"
    return resolve_guard_manifest(value)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="WER/CER of one model on a manifest, with breakdowns and worst utterances",
        description="Transcribe a manifest with one model and write predictions.jsonl, metrics.json, "
        "report.md and wer_by_group.png.",
    )
    p.add_argument(
        "--model", required=True, help="bundled name (tiny.en...), HF dir, CTranslate2 dir, run dir, hub id"
    )
    _common(p)
    p.set_defaults(func=_redacted(_run_evaluate, "model"))

    c = subparsers.add_parser(
        "compare",
        help="base vs tuned WER report (prints 'WER difference: -x.xxx %%')",
        description="Evaluate a base and a tuned model on the same audio and write report.md, report.json, "
        "PNG plots (WER by group, training curves) and per-model predictions.",
    )
    c.add_argument("--base", required=True, help="base model spec (e.g. tiny.en)")
    c.add_argument("--tuned", required=True, help="tuned model spec (a run dir uses RUN/best)")
    c.add_argument(
        "--run",
        default=None,
        help="training run dir or URI for the curves (default: --tuned if it is one)",
    )
    c.add_argument(
        "--guard",
        default="auto",
        help="real-speech guard manifest scored with both models; 'builtin', 'none', or 'auto' "
        "(default: the tuned run's data.guard, else builtin)",
    )
    c.add_argument(
        "--prompt-baseline",
        default="terms",
        help="initial prompt for a third column, the base model prompted: 'terms' (default: the domain "
        "terms, comma-separated), any text, or 'none'",
    )
    _common(c)
    c.set_defaults(func=_redacted(_run_compare, "tuned"))
