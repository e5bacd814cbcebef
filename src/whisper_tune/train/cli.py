"""``whisper-tune train | runs | best``: the training area's subcommands.

Why: thin argparse wrappers over :func:`launch`, :func:`whisper_tune.runs.list_runs`
and :func:`whisper_tune.runs.export_best` (a run found by ``runs.find_run``), so everything the CLI does is also one
function call away for the demo, notebooks and tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from whisper_tune.console import format_duration, format_pct, quiet_session

__all__ = ["register"]


def _cmd_train(args: argparse.Namespace) -> int:
    from whisper_tune.train.config import load_job_config
    from whisper_tune.train.launch import launch

    overrides = list(args.overrides) + list(getattr(args, "extra", []) or [])
    if args.new_run:
        overrides.append("run.new_run=true")
    if args.name:
        overrides.append(f"run.name={args.name}")
    cfg = load_job_config(args.config, overrides)
    default_name = Path(args.config).stem if args.config else "run"
    verbose = bool(getattr(args, "verbose", False) or getattr(args, "loud", False))
    # Ray/Train/transformers output goes to <run>/train.log (here until the run dir is known)
    first_log = Path(tempfile.gettempdir()) / f"whisper-tune-train-{os.getpid()}.log"
    session = None
    try:
        with quiet_session(first_log, verbose=verbose, follow_run_dir=True) as session:
            outcome = launch(cfg, use_ray=not args.no_ray, default_name=default_name)
    except Exception as exc:
        log_path = session.log_path if session is not None else first_log
        # Ray's TrainingFailedError (a worker died more than run.max_failures times): one clear line,
        # non-zero exit; the run dir keeps its checkpoints, so the same command resumes it.
        if type(exc).__name__ not in ("TrainingFailedError", "WorkerGroupError", "ControllerError"):
            print(f"training failed; the full log: {log_path}", file=sys.stderr)
            raise
        cause = str(exc).strip().splitlines()
        print(
            f"error: training failed (run.max_failures={cfg.run.max_failures}): {type(exc).__name__}: "
            f"{cause[0] if cause else ''} -- run the same command again to resume from the last checkpoint"
            f" (log: {log_path})",
            file=sys.stderr,
        )
        return 1
    wer = outcome.best_eval_wer
    print(f"run:              {outcome.run_dir}{' (resumed)' if outcome.resumed else ''}")
    print(f"steps:            {outcome.global_step}")
    print(f"best checkpoint:  {outcome.best_checkpoint}")
    print(f"best eval WER:    {format_pct(wer)}")
    sel = outcome.selection or {}
    if sel.get("guard_wer") is not None and sel.get("base_guard_wer") is not None:
        print(
            f"real-speech guard: {format_pct(sel['base_guard_wer'])} (base) -> "
            f"{format_pct(sel['guard_wer'])} (exported)"
        )
    if sel.get("alpha", 1.0) != 1.0:
        print(f"export:           WiSE-FT mix with the base, alpha {sel['alpha']:g}")
    if sel.get("warning"):
        print(f"WARNING:          {sel['warning']}", file=sys.stderr)
    if outcome.best_dir is not None:
        print(f"best model:       {outcome.best_dir}")
    print(f"wall time:        {format_duration(outcome.wall_s)}")
    print(f"log:              {session.log_path}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from whisper_tune.train.explain import config_keys, explain_text

    if args.json:
        print(json.dumps([asdict(k) for k in config_keys()], indent=2))
    else:
        print(explain_text(), end="")
    return 0


def _fmt_row(cols: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()


def _cmd_runs(args: argparse.Namespace) -> int:
    from whisper_tune.runs import list_runs

    runs = list_runs(args.storage)
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "name": r.name,
                "status": r.status,
                "best_eval_wer": r.best_eval_wer,
                "best_guard_wer": r.best_guard_wer,
                "base_guard_wer": r.base_guard_wer,
                "guard_ok": r.guard_ok,
                "steps": r.steps,
                "checkpoints": r.checkpoints,
                "path": str(r.path),
            }
            for r in runs
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not runs:
        print(f"no runs under {args.storage}")
        return 0
    table = [["NAME", "STATUS", "BEST EVAL WER", "GUARD WER (BASE)", "STEPS", "WHERE"]]
    for r in runs:
        wer = "-" if r.best_eval_wer is None else f"{r.best_eval_wer:.4f}"
        guard = "-"
        if r.best_guard_wer is not None:
            guard = f"{r.best_guard_wer:.4f}" + (
                f" ({r.base_guard_wer:.4f})" if r.base_guard_wer is not None else ""
            )
            guard += "" if r.guard_ok is not False else " !"
        table.append([r.name, r.status, wer, guard, str(r.steps), str(r.path)])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(_fmt_row(row, widths))
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from whisper_tune.runs import export_best, export_best_remote, find_run

    run = find_run(args.run, args.storage)
    if run.is_remote:
        done = export_best_remote(
            str(run.path), checkpoint=args.checkpoint, ct2=args.ct2, quantization=args.quantization
        )
        metrics = json.loads((done.local / run.METRICS_FILE).read_text())
        print(f"best checkpoint:  {done.checkpoint}")
        print(f"eval WER:         {format_pct(metrics.get('eval_wer'))}")
        print(f"model:            {done.local}")
        print(f"pushed to:        {done.remote}")
        if args.ct2:
            print(f"ctranslate2:      {done.remote}/ct2")
        return 0
    best = export_best(run.path, checkpoint=args.checkpoint, ct2=args.ct2, quantization=args.quantization)
    metrics = json.loads((best / run.METRICS_FILE).read_text())
    print(f"best checkpoint:  {metrics.get('source_checkpoint')}")
    print(f"eval WER:         {format_pct(metrics.get('eval_wer'))}")
    print(f"model:            {best}")
    if args.ct2:
        print(f"ctranslate2:      {best / 'ct2'}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``train``, ``runs`` and ``best`` to the ``whisper-tune`` parser."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune Whisper with Ray Train (+ DeepSpeed) from a YAML config",
        description="Fine-tune Whisper. Overrides are dotted keys: train.learning_rate=1e-5 scaling.num_workers=2. "
        "An existing run name resumes that run.",
        epilog="Every config key with its type, default and meaning: whisper-tune config --explain",
    )
    p.add_argument("--config", "-c", help="YAML job config (see configs/)")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. train.max_steps=100"
    )
    p.add_argument("--no-ray", action="store_true", help="run the train function in this process (debugging)")
    p.add_argument("--new-run", action="store_true", help="if the run name exists, start a suffixed new run")
    p.add_argument("--name", help="run name (same as run.name=...)")
    p.add_argument(
        "--verbose",
        dest="loud",
        action="store_true",
        help="show Ray / Ray Train / transformers output on the terminal too (it always goes to RUN/train.log)",
    )
    p.set_defaults(func=_cmd_train, accepts_extra=True)

    p = subparsers.add_parser(
        "config", help="explain the training config: every key with its type, default and meaning"
    )
    p.add_argument("--explain", action="store_true", help="list every key (the default action)")
    p.add_argument("--json", action="store_true", help="the same list as JSON (key, type, default, help)")
    p.set_defaults(func=_cmd_config)

    p = subparsers.add_parser("runs", help="list training runs (name, status, best eval WER, steps, where)")
    p.add_argument(
        "--storage", default="runs", help="storage directory or URI, e.g. s3://bucket/runs (default: runs)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_runs)

    p = subparsers.add_parser(
        "best", help="export a run's best checkpoint to RUN/best (HF dir, optional CTranslate2)"
    )
    p.add_argument("run", help="run directory or URI (s3://bucket/runs/NAME), or run name under --storage")
    p.add_argument("--storage", default="runs", help="storage directory or URI for run names (default: runs)")
    p.add_argument("--checkpoint", help="export this checkpoint dir instead of the best one")
    p.add_argument("--ct2", action="store_true", help="also write RUN/best/ct2 (CTranslate2)")
    p.add_argument("--quantization", help="CTranslate2 quantization, e.g. int8, float16")
    p.set_defaults(func=_cmd_best)
