"""``whisper-tune data ...``: check manifests, build the real-speech guard (synth area: make a corpus).

Why: before spending GPU hours a user should see, in seconds, how much of their data is
usable and exactly which rows are not and why. ``data check`` runs the very checks
training runs (:func:`whisper_tune.data.prepare.scan`) and prints the same report.
Exit status: 0 when at least one row is usable, 1 when none is.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path
from typing import Any

from whisper_tune.errors import DataError

__all__ = ["load_processor", "register"]

log = logging.getLogger(__name__)


def load_processor(model: str | None = None) -> Any:
    """The processor used to count label tokens: a local HF/CT2 dir or model spec, or the bundled tiny.en one."""
    from whisper_tune.models.processor import build_processor_from_tokenizer, bundled_tokenizer_file
    from whisper_tune.models.processor import load_processor as load_model_processor

    if model is None:
        return build_processor_from_tokenizer(bundled_tokenizer_file())
    from whisper_tune.models import ensure_hf_dir

    path = model if Path(model).expanduser().is_dir() else ensure_hf_dir(model)
    try:
        return load_model_processor(path)
    except Exception as exc:
        raise DataError(f"--model {model}: cannot load its processor ({exc})") from exc


def _cmd_check(args: argparse.Namespace) -> int:
    from whisper_tune.data.longform import LongFormOptions
    from whisper_tune.data.prepare import check_data

    load_kwargs: dict[str, Any] = {
        "fmt": args.format,
        "text_column": args.text_column,
        "audio_column": args.audio_column,
        "root": args.root,
        "allow_outside_root": args.allow_outside_root,
    }
    report = check_data(
        list(args.manifest),
        processor=load_processor(args.model),
        max_label_tokens=args.max_label_tokens,
        max_duration_s=args.max_duration,
        feature_cache=args.feature_cache,
        num_workers=args.num_workers,
        load_kwargs=load_kwargs,
        long_form=LongFormOptions(channels=args.channels, max_window_s=min(30.0, args.max_duration)),
    )
    if args.out:
        pj, pm = report.write(args.out)
        log.info("wrote %s and %s", pj, pm)
    print(report.to_json() if args.json else report.to_markdown())
    return 0 if report.usable > 0 else 1


def _cmd_guard(args: argparse.Namespace) -> int:
    from whisper_tune.data.guard import build_guard

    manifest = build_guard(args.out, args.max_clips, lenient=args.lenient)
    sheet = json.loads((manifest.parent / "datasheet.json").read_text(encoding="utf-8"))
    print(
        f"real-speech guard: {sheet['clips']} clips, {sheet['seconds']:.1f} s, {len(sheet['speakers'])} speakers, "
        f"{len(sheet['sources'])} sources -> {manifest} (datasheet: {manifest.parent / 'datasheet.md'})"
    )
    for d in sheet["dropped"]:
        print(f"left out {d['id']}: {d['message']}")
    return 0


def _add_guard_parser(sub: Any) -> None:
    g = sub.add_parser(
        "guard",
        help="build the real-speech guard set from installed Debian packages",
        description=(
            "Builds the real-speech guard set (real human recordings with checked transcripts, from "
            "Debian packages that `make` installs) into --out: audio/*.wav at 16 kHz, manifest.jsonl "
            "and datasheet.md/json (sources, licences, counts, speakers, how transcripts were verified)."
        ),
    )
    g.add_argument("--out", required=True, help="output folder (new, empty, or an earlier guard build)")
    g.add_argument(
        "--max-clips", type=int, default=None, help="keep N clips, a fixed stratified subset (default: all)"
    )
    g.add_argument(
        "--lenient", action="store_true", help="leave out clips whose package is missing or changed (listed)"
    )
    g.set_defaults(func=_cmd_guard)


def _cmd_join(args: argparse.Namespace) -> int:
    from whisper_tune.data.joined import join_clips

    res = join_clips(args.manifest, args.out, seconds=args.seconds, seed=args.seed)
    print(f"{res.clips} clips -> {res.recordings} recordings ({res.seconds:.0f} s): {res.manifest}")
    for line in res.skipped:
        print(f"skipped {line}")
    return 0


def _add_join_parser(sub: Any) -> None:
    j = sub.add_parser(
        "join",
        help="join short clips into long recordings with reference segments (long-form evaluation)",
        description=(
            "Joins the clips of MANIFEST (seeded order, 0.4-0.9 s pauses) into recordings of at least "
            "--seconds each: --out/audio/joined_NNN.wav and --out/longform.jsonl, whose segments are the "
            "clips' exact spans; score them with `evaluate --longform` / `compare --longform`."
        ),
    )
    j.add_argument("manifest", help="a manifest of short clips (e.g. the real-speech guard's)")
    j.add_argument("--out", required=True, help="output folder")
    j.add_argument("--seconds", type=float, default=60.0, help="least length of a recording (default 60)")
    j.add_argument("--seed", type=int, default=0)
    j.set_defaults(func=_cmd_join)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("data", help="check data sets; make a synthetic corpus")
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])

    c = sub.add_parser(
        "check",
        help="report what is usable in manifest(s) and why the rest is not",
        description="Runs the training data checks and prints a report (Markdown, or JSON with --json).",
    )
    c.add_argument(
        "manifest",
        nargs="+",
        help="JSONL / CSV / TSV manifest, audiofolder dir, hf://name[/config]:split, or a call's .srt/.vtt",
    )
    c.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    c.add_argument("--out", help="also write data_report.json / data_report.md into this folder")
    c.add_argument(
        "--model", help="HF model dir/spec whose tokenizer counts label tokens (default: bundled tiny.en)"
    )
    c.add_argument("--max-label-tokens", type=int, default=448)
    c.add_argument("--max-duration", type=float, default=30.0, help="seconds; longer clips are rejected")
    c.add_argument("--format", default="auto", choices=["auto", "jsonl", "csv", "tsv", "audiofolder", "hf"])
    c.add_argument("--text-column", default=None)
    c.add_argument("--audio-column", default=None)
    c.add_argument(
        "--root", default=None, help="data root audio paths must stay in (default: manifest folder)"
    )
    c.add_argument("--allow-outside-root", action="store_true")
    c.add_argument("--feature-cache", default=None, help="also extract features into this cache folder")
    c.add_argument("--num-workers", type=int, default=1, help="processes for decoding/extraction")
    c.add_argument(
        "--channels",
        default="mix",
        choices=["mix", "split"],
        help="long recordings: down-mix, or each channel its own stream (data.channels)",
    )
    c.set_defaults(func=_cmd_check)
    _add_guard_parser(sub)
    _add_join_parser(sub)

    try:
        synth_cli = importlib.import_module("whisper_tune.data.synth.cli")
    except ModuleNotFoundError as exc:
        if exc.name != "whisper_tune.data.synth.cli":
            raise
        return
    add = getattr(synth_cli, "add_synth_parser", None)
    if add is not None:
        add(sub)
