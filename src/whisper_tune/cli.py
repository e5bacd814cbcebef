"""The one ``whisper-tune`` entry point.

Why: users want one command. Each pipeline area owns its subcommands in its own
``cli.py`` exposing ``register(subparsers)``; this module only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# each module defines register(subparsers) -> None
_AREAS: tuple[str, ...] = (
    "whisper_tune.models.cli",
    "whisper_tune.data.cli",
    "whisper_tune.train.cli",
    "whisper_tune.runs.cli",
    "whisper_tune.evaluate.cli",
    "whisper_tune.serve.cli",
    "whisper_tune.cluster.cli",
    "whisper_tune.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whisper-tune",
        description="Fine-tune Whisper for a domain with Ray Train, evaluate it honestly, serve it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in _AREAS:
        importlib.import_module(modname).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "accepts_extra", False):
        args.extra = list(extra)
    from whisper_tune.errors import UserError

    try:
        rc = func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
