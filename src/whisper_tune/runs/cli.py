"""``whisper-tune card RUN`` and ``whisper-tune push RUN --repo-id ORG/NAME``.

Why: ``best/`` is what gets shipped; its model card (``runs.model_card``) is written at export
and refreshed by ``compare``, but a user who edits the run's files, or wants the card before
pushing, needs to rewrite it on demand, and an online user wants ``best/`` on the Hugging Face
Hub in one command (``runs.hub_push``; private repo unless ``--public``). Each prints what the
next command needs: the card's path, the repo's URL.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_card", "cmd_push", "register"]


def register(subparsers: Any) -> None:
    card = subparsers.add_parser(
        "card", help="(re)write RUN/best/README.md, the model card, from the run's files"
    )
    card.add_argument("run", help="run dir (or its best/ dir)")
    card.set_defaults(func=cmd_card)

    push = subparsers.add_parser(
        "push", help="upload RUN/best (model card, weights, ct2/) to a Hugging Face Hub model repo (online)"
    )
    push.add_argument("run", help="run dir (or its best/ dir)")
    push.add_argument("--repo-id", required=True, help="Hub model repo, e.g. your-org/whisper-calls")
    push.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    push.add_argument("--no-ct2", action="store_true", help="leave best/ct2 (the CTranslate2 export) out")
    push.set_defaults(func=cmd_push)


def cmd_card(args: argparse.Namespace) -> int:
    from whisper_tune.runs.hub_push import resolve_best_dir
    from whisper_tune.runs.model_card import write_model_card

    best, run = resolve_best_dir(args.run)
    print(write_model_card(best, run))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from whisper_tune.runs.hub_push import push_best_to_hub

    res = push_best_to_hub(args.run, args.repo_id, private=not args.public, include_ct2=not args.no_ct2)
    print(res.url)
    return 0
