"""Version shims for the libraries training runs on (transformers, torch), in one place.

Why: the project runs against more than one version of its libraries at a time (the CPU
machines' transformers 5.2x, the lent GPU machine's 5.1x; torch with and without newer
keywords). A shim written where it is first needed gets written again, with a different
comment, the next time; here each one is written once, says which versions differ and how,
and is the only code that asks a library for its version-dependent names.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from whisper_tune.models.load import cuda_bf16_native as cuda_bf16_supported  # the one copy

__all__ = [
    "checkpointing_arg_name",
    "checkpointing_args",
    "cuda_bf16_supported",
    "is_checkpointing",
    "set_checkpointing",
]


@functools.cache
def _training_arg_names() -> frozenset[str]:
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


def checkpointing_arg_name() -> str:
    """The ``TrainingArguments`` field that turns on activation (gradient) checkpointing.

    transformers 5.2x renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the
    old name still works there but warns); older versions, such as the lent GPU machine's
    5.1x, only know ``gradient_checkpointing``. The matching ``*_kwargs`` field follows the
    same name.
    """
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in _training_arg_names()
        else "gradient_checkpointing"
    )


def checkpointing_args(enabled: bool) -> dict[str, Any]:
    """``TrainingArguments`` keywords for checkpointing on/off under whichever name is installed.

    On: non-reentrant checkpointing (``use_reentrant=False``), which works with frozen inputs
    (LoRA, a frozen encoder) and with torch.compile; off: no kwargs.
    """
    key = checkpointing_arg_name()
    return {key: bool(enabled), f"{key}_kwargs": {"use_reentrant": False} if enabled else None}


def set_checkpointing(model: Any, enabled: bool) -> None:
    """Turn a model's activation checkpointing on (non-reentrant) or off.

    transformers 5.2x names the methods ``activation_checkpointing_enable/_disable`` (the
    ``gradient_checkpointing_*`` names still work but warn); older versions have only the
    ``gradient_checkpointing_*`` ones.
    """
    if enabled:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def is_checkpointing(model: Any) -> bool:
    """Whether activation checkpointing is on (``is_activation_checkpointing`` in transformers
    5.2x, ``is_gradient_checkpointing`` before; False for a module that has neither)."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        try:  # getattr, not hasattr on the class: a peft model forwards it to the base model
            return bool(getattr(model, name))
        except AttributeError:
            continue
    return False
