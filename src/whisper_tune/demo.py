"""``whisper-tune demo``: the whole product in one offline command.

Why: a user should see the gain before wiring anything up. The demo synthesizes a banking
corpus (held-out sentences *and* voices), fine-tunes the real ``tiny.en`` with Ray Train on
local workers, exports the best checkpoint (HF + CTranslate2), and writes the base-vs-tuned
report on the held-out test split. Its defaults were chosen by measurement on a 2-core CPU
(docs/forgetting.md): only the encoder learns (``train.strategy: encoder``), for one epoch,
and the export mixes tuned and base weights (WiSE-FT) at the largest ratio that keeps the
real-speech guard at the base model's WER. Training the decoder instead is ~3x cheaper per
sample (its encoder outputs can be cached) but teaches Whisper's language model the
corpus' phrasing, and real human speech got worse at every mixing ratio tried.

``--size full`` does a bigger run (more clips, more epochs) for a GPU or a patient CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from whisper_tune import console
from whisper_tune.config import apply_overrides, dump_yaml, from_dict

__all__ = ["DemoConfig", "DemoResult", "SIZES", "run_demo", "register"]

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Embedded defaults of the demo (``small``: ~25-35 min on 2 CPU cores, most of it encoder training)."""

    size: Literal["small", "full"] = "small"
    out: str = "demo_out"
    model: str = "tiny.en"
    clips: int = 1000
    seed: int = 0
    workers: int = 2  # Ray Train workers
    epochs: float = (
        1.0  # the encoder adapts in one epoch; more steps cost real-speech WER (docs/forgetting.md)
    )
    learning_rate: float = 1e-4
    batch_size: int = 16
    eval_clips: int = 48  # validation clips scored with generation during training
    eval_every_epochs: float = 1.0
    holdout_templates: float = 0.2  # share of sentence templates kept out of train (phrasing held out too)
    strategy: Literal["full", "decoder", "cross_attention", "encoder", "lora"] = "encoder"
    cache_encoder_outputs: bool = False  # only for frozen-encoder strategies (decoder, cross_attention)
    guard: str = "builtin"  # the real-speech guard (data.guard): scored every evaluation, bounds the export
    timestamp_share: float = (
        0.0  # training clips with timestamped labels (data.timestamp_share; docs/forgetting.md)
    )
    kl_to_base: float = 0.0  # KL(base || tuned) weight (train.kl_to_base)
    pack_share: float = 0.0  # clips packed into 30 s windows (data.pack_share); 0.5 cost guard WER here
    ct2_export: bool = True
    calls: int = 1  # synthetic 1-minute two-channel calls decoded long-form in the report (0 = none)
    # synthetic 1-2 minute calls cut into timestamped training windows. 0: measured with 2, the
    # export failed the real-speech guard at every mix (alpha 0.5: 3.48 %, 0.2: 3.21 % vs base 2.94 %)
    train_calls: int = 0
    redact: bool = True  # report.redact: card/account/phone numbers and e-mails masked in the report
    extra_overrides: list[str] = field(default_factory=list)


SIZES: dict[str, dict[str, Any]] = {
    "small": {},
    "full": {"clips": 4000, "epochs": 2.0, "eval_clips": 200},
}


@dataclass
class DemoResult:
    out_dir: Path
    corpus_dir: Path
    run_dir: Path
    best_dir: Path | None
    report_dir: Path
    base_wer: float | None
    tuned_wer: float | None
    timings_s: dict[str, float]
    ci_line: str = ""
    prompt_wer: float | None = None
    guard_wer: tuple[float, float] | None = None  # base, tuned on the real-speech guard
    selection: dict[str, Any] | None = None


def _train_items(train_clips: int, pack_share: float) -> int:
    """Training items after packing: 4.9 demo clips fill a 30 s window (measured: 400 in 82)."""
    packed = round(train_clips * pack_share)
    return train_clips - packed + int(-(-packed // 4.9))


def _steps_per_epoch(train_clips: int, workers: int, batch: int) -> int:
    return max(1, -(-train_clips // (workers * batch)))


def job_config_dict(
    cfg: DemoConfig, corpus: Path, train_clips: int, use_gpu: bool, calls: Path | None = None
) -> dict[str, Any]:
    """The training job the demo runs (written to the run dir as config.yaml); ``calls``: the
    segments manifest of the training calls, cut into <= 30 s windows beside the clips."""
    steps_per_epoch = _steps_per_epoch(_train_items(train_clips, cfg.pack_share), cfg.workers, cfg.batch_size)
    eval_steps = max(1, int(round(steps_per_epoch * cfg.eval_every_epochs)))
    if calls is not None and cfg.eval_every_epochs >= cfg.epochs:
        # the call windows add steps the clip count does not see: one evaluation per run is the
        # last step's (FinalEvalSave), not a periodic one a step or two before it as well
        eval_steps = 2 * steps_per_epoch * max(1, int(cfg.epochs + 0.999))
    return {
        "model": {"name": cfg.model},
        "data": {
            "train": [str(corpus / "train.jsonl"), str(calls)] if calls else str(corpus / "train.jsonl"),
            "eval": str(corpus / "validation.jsonl"),
            "max_eval_samples": cfg.eval_clips,
            "guard": cfg.guard,
            # one evaluation per run: checking only the export skips the base and in-training guard passes
            "guard_at": "export",
            "timestamp_share": cfg.timestamp_share,
            "pack_share": cfg.pack_share,
        },
        "train": {
            "strategy": cfg.strategy,
            "cache_encoder_outputs": cfg.cache_encoder_outputs,
            "learning_rate": cfg.learning_rate,
            # a fifth of the run (5 of the small demo's 25 steps, as measured in docs/forgetting.md)
            "warmup_steps": max(1, round(steps_per_epoch * cfg.epochs / 5)),
            "lr_scheduler": "linear",
            "num_epochs": cfg.epochs,
            "per_device_batch_size": cfg.batch_size,
            "eval_batch_size": 16,
            "eval_steps": eval_steps,
            "save_steps": eval_steps,
            "logging_steps": max(1, min(10, steps_per_epoch // 2)),
            "precision": "auto",
            "generation_max_length": "auto",  # longest label x 1.25 + 16: no runaway 128-token decodes
            "weight_decay": 0.01,
            "kl_to_base": cfg.kl_to_base,
        },
        "scaling": {"num_workers": cfg.workers, "use_gpu": use_gpu},
        "run": {
            "name": "demo",
            "storage_path": str(Path(cfg.out) / "runs"),
            "num_to_keep": 2,
            "ct2": cfg.ct2_export,
            "ct2_quantization": "int8",
        },
        "report": {"redact": cfg.redact},  # so a later `compare` on the run masks PII too
    }


def _corpus_ready(corpus: Path, cfg: DemoConfig) -> bool:
    sheet = corpus / "datasheet.json"
    if not sheet.is_file():
        return False
    try:
        data = json.loads(sheet.read_text(encoding="utf-8"))
    except ValueError:
        return False
    conf = data.get("config", {})
    return (
        conf.get("n") == cfg.clips
        and conf.get("seed") == cfg.seed
        and conf.get("holdout_templates", 0.0) == cfg.holdout_templates
    )


def _pct(value: Any) -> str:
    return console.format_pct(value)


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


def _calls(out: Path, n: int, seed: int, minutes: tuple[float, float], manifest: str) -> Path | None:
    """``n`` synthetic calls (8 kHz stereo) in ``out``, made once; ``out/manifest`` (None for 0)."""
    from whisper_tune.data.synth.calls import CallsConfig, synthesize_calls

    if n < 1:
        return None
    if not (out / manifest).is_file():
        synthesize_calls(CallsConfig(out=str(out), calls=n, seed=seed, minutes=minutes, overwrite=True))
    return out / manifest


def _train_calls(corpus: Path, cfg: DemoConfig) -> Path | None:
    """``cfg.train_calls`` calls (1-2 min, another seed than the report's call): segments for training."""
    return _calls(corpus / "calls_train", cfg.train_calls, cfg.seed + 1, (1.0, 2.0), "segments.jsonl")


def _demo_calls(corpus: Path, cfg: DemoConfig) -> Path | None:
    """``cfg.calls`` one-minute calls in ``corpus/calls``: the report's long-form manifest."""
    return _calls(corpus / "calls", cfg.calls, cfg.seed, (1.0, 1.0), "longform.jsonl")


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Synthesize -> tune with Ray Train -> export best -> compare base vs tuned."""
    from whisper_tune.data.synth import SynthConfig, synthesize_corpus
    from whisper_tune.evaluate import compare
    from whisper_tune.models import ensure_hf_dir
    from whisper_tune.train.config import JobConfig
    from whisper_tune.train.guard import resolve_guard_manifest
    from whisper_tune.train.launch import launch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    dump_yaml(cfg, out / "demo_config.yaml", header="whisper-tune demo settings (embedded defaults)")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    corpus = out / "data"
    t0 = time.perf_counter()
    if _corpus_ready(corpus, cfg):
        console.say(f"synthesis: reusing {corpus}")
    else:
        shown = console.stage(f"synthesis ({cfg.clips} banking + everyday clips)", unit="chunks")
        with console.progress_from_log(shown, "whisper_tune.data.synth.corpus", "rendered %d/%d chunks"):
            info = synthesize_corpus(
                SynthConfig(
                    out=str(corpus),
                    n=cfg.clips,
                    seed=cfg.seed,
                    holdout_templates=cfg.holdout_templates,
                    overwrite=True,
                )
            )
        splits = ", ".join(f"{k} {v}" for k, v in info.clips.items())
        shown.close(f"{sum(info.clips.values())} clips ({splits}), {sum(info.hours.values()):.2f} h")
    timings["synthesis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    base_dir = ensure_hf_dir(cfg.model)
    timings["model_pull"] = time.perf_counter() - t0
    log.info("base model %s: %s", cfg.model, base_dir)

    train_clips = sum(
        1 for line in (corpus / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    )
    use_gpu = _cuda()
    t0 = time.perf_counter()
    job = job_config_dict(cfg, corpus, train_clips, use_gpu, _train_calls(corpus, cfg))
    timings["synthesis"] += time.perf_counter() - t0
    job = apply_overrides(job, cfg.extra_overrides)
    job_cfg = from_dict(JobConfig, job)
    console.say(
        f"fine-tuning {cfg.model} ({cfg.strategy}, {cfg.epochs:g} epoch(s), {cfg.workers} Ray workers, "
        f"{'GPU' if use_gpu else 'CPU'})"
    )
    t0 = time.perf_counter()
    outcome = launch(job_cfg, default_name="demo")
    timings["training"] = time.perf_counter() - t0
    best = outcome.best_dir
    sel = outcome.selection or {}
    exported = sel.get("eval_wer", outcome.best_eval_wer)
    log.info(
        "run %s; best checkpoint eval WER %s; exported best/ eval WER %s, real-speech guard %s (base %s), alpha %g",
        outcome.run_dir,
        _pct(outcome.best_eval_wer),
        _pct(exported),
        _pct(sel.get("guard_wer")),
        _pct(sel.get("base_guard_wer")),
        sel.get("alpha", 1.0),
    )

    t0 = time.perf_counter()
    report_dir = out / "report"
    # one pass per model decoding: base, tuned, base + prompt, then base and tuned on the guard
    shown = console.stage(
        "evaluation (base vs tuned, held-out test split + real-speech guard)", unit="passes"
    )
    with console.progress_from_log(
        shown,
        "whisper_tune.evaluate.pipeline",
        "%s: WER %.4f over %d utterances, transcribed in %.1f s",
        total=3 + (2 if cfg.guard != "none" else 0),
    ):
        result = compare(
            cfg.model,
            str(best or outcome.run_dir),
            str(corpus / "test.jsonl"),
            report_dir,
            domain_terms=corpus / "domain_terms.txt",
            train_log=outcome.run_dir,
            guard=resolve_guard_manifest(cfg.guard),
            prompt_baseline="terms",
            longform=_demo_calls(corpus, cfg),
            redact=cfg.redact,
        )
    shown.close(f"test WER {_pct(result.base.wer)} -> {_pct(result.tuned.wer)}")
    timings["evaluation"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all
    res = DemoResult(
        out, corpus, outcome.run_dir, best, report_dir, result.base.wer, result.tuned.wer, timings
    )
    res.ci_line = result.ci_line()
    res.prompt_wer = result.prompt_baseline.wer if result.prompt_baseline is not None else None
    if result.guard is not None:
        res.guard_wer = (result.guard.base.wer, result.guard.tuned.wer)
    res.selection = outcome.selection
    (out / "demo_result.json").write_text(
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(res).items()}, indent=2),
        encoding="utf-8",
    )
    return res


def _cmd(args: argparse.Namespace) -> int:
    cfg = DemoConfig(size=args.size, out=args.out, seed=args.seed, workers=args.workers)
    for k, v in SIZES[args.size].items():
        setattr(cfg, k, v)
    if args.clips:
        cfg.clips = args.clips
    if args.epochs:
        cfg.epochs = args.epochs
    cfg.extra_overrides = list(args.set or [])
    log_path = Path(cfg.out).resolve() / "demo.log"
    print(f"whisper-tune demo: synthesis, training, export, evaluation (full log: {log_path})", flush=True)
    try:
        with console.quiet_session(
            log_path, verbose=bool(getattr(args, "verbose", False) or getattr(args, "loud", False))
        ):
            res = run_demo(cfg)
    except BaseException:
        print(f"the demo stopped; the full log: {log_path}", file=sys.stderr)
        raise
    pct = console.format_pct
    print()
    print("whisper-tune demo finished")
    if res.base_wer is not None and res.tuned_wer is not None:
        print(f"  test WER  base {pct(res.base_wer)}  ->  tuned {pct(res.tuned_wer)}")
        print(f"            {res.ci_line}")
    if res.prompt_wer is not None:
        print(f"  prompt    base prompted with the domain terms: {pct(res.prompt_wer)}")
    if res.guard_wer is not None:
        print(f"  real speech (guard)  base {pct(res.guard_wer[0])}  ->  tuned {pct(res.guard_wer[1])}")
    if res.selection:
        alpha = res.selection.get("alpha", 1.0)
        print(f"  export    {res.selection.get('rule')}" + (f" (alpha {alpha:g})" if alpha != 1.0 else ""))
        if res.selection.get("warning"):
            print(f"  WARNING   {res.selection['warning']}")
    print(f"  corpus    {res.corpus_dir}  (datasheet.md)")
    print(f"  run       {res.run_dir}  (tensorboard --logdir {res.run_dir})")
    print(f"  best      {res.best_dir}")
    print(f"  report    {(res.report_dir / 'report.html').as_uri()}  (and report.md, report.json)")
    print(f"  log       {log_path}")
    timings = ", ".join(f"{k} {console.format_duration(v)}" for k, v in res.timings_s.items())
    print(f"  timings   {timings}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="synthesize banking speech, tune tiny.en with Ray, report base vs tuned")
    p.add_argument(
        "--size", choices=sorted(SIZES), default="small", help="small (~25-35 min on 2 CPU cores) or full"
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="Ray Train workers")
    p.add_argument("--clips", type=int, default=0, help="override the corpus size")
    p.add_argument("--epochs", type=float, default=0.0, help="override the number of epochs")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training config key")
    p.add_argument(
        "--verbose",
        dest="loud",
        action="store_true",
        help="show Ray / Ray Train / transformers output on the terminal too (it always goes to OUT/demo.log)",
    )
    p.set_defaults(func=_cmd)
