"""``whisper-tune data synth``: make the synthetic banking speech corpus.

Why a separate parser builder: the ``data`` command group belongs to ``whisper_tune.data.cli``,
which calls :func:`add_synth_parser` with its sub-parsers; ``python -m whisper_tune.data.synth``
runs the same command standalone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from whisper_tune.errors import UserError

__all__ = ["add_synth_parser", "run_calls", "run_synth", "main"]


def _share(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return v


def _snr_range(value: str) -> tuple[float, float]:
    parts = value.split(",")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in dB (e.g. 5,25), got {value!r}") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or nums[0] > nums[1]:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with LOW <= HIGH, got {value!r}")
    return nums[0], nums[1]


def _minutes_range(value: str) -> tuple[float, float]:
    try:
        nums = [float(p) for p in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in minutes (e.g. 1,5), got {value!r}") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or not 0 < nums[0] <= nums[1]:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with 0 < LOW <= HIGH, got {value!r}")
    return nums[0], nums[1]


def _positive_int(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return v


def add_synth_parser(data_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``synth`` to the ``data`` command group; returns the new parser."""
    p: argparse.ArgumentParser = data_subparsers.add_parser(
        "synth",
        help="synthesize a domain speech corpus offline (Piper + espeak-ng, phone channel, noise)",
        description=(
            "Synthesize a speech corpus for a domain: sentences from a generator (14 banking intents "
            "+ everyday English), spoken by Piper and espeak-ng speakers, a share through a telephone "
            "channel and a share with noise. Writes train/validation/test JSONL manifests, metadata.csv, "
            "datasheet.md/json and domain_terms.txt. Test speakers and sentences never occur in train."
        ),
    )
    p.add_argument("--domain", default="banking", choices=["banking"], help="text domain (default banking)")
    p.add_argument("--n", type=_positive_int, default=1000, help="number of clips (default 1000)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty, see --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same corpus (default 0)")
    p.add_argument("--workers", type=_positive_int, default=None, help="processes (default: all cores)")
    p.add_argument("--phone-share", type=_share, default=0.4, help="share through the phone channel (0.4)")
    p.add_argument("--noise-share", type=_share, default=0.4, help="share with background noise (0.4)")
    p.add_argument("--snr-db", type=_snr_range, default=(8.0, 28.0), help="SNR range LOW,HIGH in dB (8,28)")
    p.add_argument("--general-share", type=_share, default=0.25, help="share of everyday English (0.25)")
    p.add_argument(
        "--piper-share", type=_share, default=0.5, help="share spoken by Piper, rest espeak-ng (0.5)"
    )
    p.add_argument(
        "--holdout-templates",
        type=float,
        default=0.0,
        help="share of each intent's sentence templates used only in validation/test (0 = off; e.g. 0.2)",
    )
    p.add_argument(
        "--calls",
        type=_positive_int,
        default=None,
        help="instead of clips, make N two-channel calls (agent left, customer right) with SRTs, "
        "segments.jsonl and longform.jsonl",
    )
    p.add_argument(
        "--call-minutes", type=_minutes_range, default=(1.0, 5.0), help="call length range LOW,HIGH (1,5)"
    )
    p.add_argument(
        "--call-sample-rate", type=int, choices=(8000, 16000), default=8000, help="calls' sample rate (8000)"
    )
    p.add_argument("--call-format", choices=("wav", "flac"), default="wav", help="calls' audio format (wav)")
    p.add_argument("--overwrite", action="store_true", help="replace a previous corpus in --out")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_synth)
    return p


def run_calls(args: argparse.Namespace) -> int:
    from whisper_tune.data.synth.calls import CallsConfig, synthesize_calls

    cfg = CallsConfig(
        out=args.out,
        calls=args.calls,
        seed=args.seed,
        minutes=tuple(args.call_minutes),
        sample_rate=args.call_sample_rate,
        audio_format=args.call_format,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    info = synthesize_calls(cfg)
    summary = {
        "out": str(info.out_dir),
        "calls": len(info.calls),
        "minutes": round(info.hours * 60, 2),
        "failed": info.failed,
        "segments": str(info.segments),
        "longform": str(info.longform),
        "wall_s": round(info.wall_s, 1),
    }
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {summary['calls']} call(s), {summary['minutes']} min, to {info.out_dir} in "
            f"{info.wall_s:.1f} s (failed {len(info.failed)}); segments: {info.segments}; "
            f"long-form manifest: {info.longform}"
        )
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from whisper_tune.data.synth import SynthConfig, synthesize_corpus

    if getattr(args, "calls", None):
        return run_calls(args)
    cfg = SynthConfig(
        out=args.out,
        n=args.n,
        seed=args.seed,
        domain=args.domain,
        workers=args.workers,
        phone_share=args.phone_share,
        noise_share=args.noise_share,
        snr_db=tuple(args.snr_db),
        general_share=args.general_share,
        piper_share=args.piper_share,
        holdout_templates=args.holdout_templates,
        overwrite=args.overwrite,
    )
    info = synthesize_corpus(cfg)
    summary = {
        "out": str(info.out_dir),
        "clips": info.clips,
        "hours": info.hours,
        "failed": info.failed,
        "engines": info.engines,
        "messages": info.messages,
        "wall_s": round(info.wall_s, 1),
        "manifests": {k: str(v) for k, v in info.manifests.items()},
        "datasheet": str(info.datasheet_md),
    }
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
    else:
        total = sum(info.clips.values())
        print(
            f"wrote {total} clips to {info.out_dir} in {info.wall_s:.1f} s "
            f"(train {info.clips['train']}, validation {info.clips['validation']}, test {info.clips['test']}; "
            f"{sum(info.hours.values()):.3f} h; failed {info.failed})"
        )
        for m in info.messages:
            print(f"note: {m}")
        print(f"datasheet: {info.datasheet_md}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: ``python -m whisper_tune.data.synth --out DIR ...``."""
    parser = argparse.ArgumentParser(prog="python -m whisper_tune.data.synth")
    sub = parser.add_subparsers(dest="command")
    add_synth_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "synth":
        argv = ["synth", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_synth(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
