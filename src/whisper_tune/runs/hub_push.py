"""``best/`` to a Hugging Face Hub model repo, with its model card (online users, optional).

Why: the Hub is where a tuned Whisper is shared, and ``transformers``/``faster-whisper`` load it
from there by id. ``best/`` is already a self-contained Transformers dir (plus ``ct2/``, the
CTranslate2 export); this module makes sure its card (``README.md``, ``runs.model_card``) is
current, creates the repo (private unless asked otherwise) and uploads the folder in one
commit. Without network, or with ``HF_HUB_OFFLINE`` set, it fails before touching anything,
with a message that says so; Hub errors (no token, no rights) name the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisper_tune.errors import UserError
from whisper_tune.runs.layout import RunDir
from whisper_tune.runs.model_card import CARD_FILE, write_model_card

__all__ = ["PushResult", "push_best_to_hub", "resolve_best_dir"]

log = logging.getLogger(__name__)

# never uploaded: the short-context copy needs cut features (no Hub pipeline can use it), temp files
IGNORE = ["short/*", "*.tmp", ".*"]


@dataclass(frozen=True)
class PushResult:
    """Where ``best/`` went: the repo id, its URL and the commit."""

    repo_id: str
    url: str
    commit: str | None
    files: int


def resolve_best_dir(run_or_best: str | Path) -> tuple[Path, Path | None]:
    """(the model dir, its run dir or None) for a run dir or a ``best/``-like model dir."""
    p = Path(run_or_best).expanduser()
    if (p / RunDir.BEST_DIR / "config.json").is_file():
        return p / RunDir.BEST_DIR, p
    if (p / "config.json").is_file():
        return p, p.parent if p.name == RunDir.BEST_DIR else None
    raise UserError(
        f"{p}: neither a run with best/ nor a model dir (export it first: `whisper-tune best RUN`)"
    )


def push_best_to_hub(
    run_or_best: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    token: str | None = None,
    include_ct2: bool = True,
    commit_message: str | None = None,
    api: Any = None,
) -> PushResult:
    """Upload ``RUN/best`` (or a model dir) to the Hub model repo ``repo_id``; returns where it went.

    The model card is rewritten first (from the run's current files). ``api``: an
    ``huggingface_hub.HfApi`` (default: a new one with ``token``, else the logged-in user's).
    """
    from whisper_tune.models.hub import HUB_ID, hub_offline

    if not HUB_ID.match(repo_id):
        raise UserError(f"--repo-id {repo_id!r}: expected a Hub model id such as your-org/whisper-calls")
    best, run = resolve_best_dir(run_or_best)
    if hub_offline():
        raise UserError("HF_HUB_OFFLINE is set: pushing to the Hub needs the network (unset it)")
    write_model_card(best, run)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    ignore = [*IGNORE, *([] if include_ct2 else ["ct2/*"])]
    files = sum(
        1
        for f in best.rglob("*")
        if f.is_file() and not f.relative_to(best).as_posix().startswith(("short/", "."))
    )
    try:
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(best),
            repo_type="model",
            commit_message=commit_message or f"whisper-tune: upload {run.name if run else best.name}",
            ignore_patterns=ignore,
        )
    except Exception as exc:  # HfHubHTTPError (401/403/404), connection errors...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = (
            " (log in with `hf auth login` or set HF_TOKEN, with write access to the repo)"
            if "40" in text
            else ""
        )
        raise UserError(f"push to the Hub repo '{repo_id}' failed: {text}{hint}") from None
    url = str(getattr(repo, "url", "") or f"https://huggingface.co/{repo_id}")
    commit = getattr(info, "oid", None) or getattr(info, "commit_url", None)
    log.info("pushed %s (%d files, card %s) to %s", best, files, CARD_FILE, url)
    return PushResult(repo_id=repo_id, url=url, commit=str(commit) if commit else None, files=files)
