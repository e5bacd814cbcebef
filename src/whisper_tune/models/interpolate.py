"""Weight-space interpolation of a base and a fine-tuned Whisper (WiSE-FT).

Why: fine-tuning on a narrow domain teaches the decoder the domain's phrasing and makes it
worse on general speech ("forgetting"). Wortsman et al. (2022, "Robust fine-tuning of
zero-shot models", CVPR) show that the straight line between the zero-shot and the
fine-tuned weights, ``theta(alpha) = (1 - alpha) * theta_base + alpha * theta_tuned``,
keeps most of the fine-tuning gain at a fraction of the loss in general accuracy; here a
tuned tiny.en at alpha = 0.5 kept real read speech at the base model's WER while cutting
synthetic banking WER by about a third. The trade-off is smooth in alpha, so the training
run picks alpha on its eval and guard sets (``whisper_tune.train.select``).

Only floating-point parameters and buffers that both models hold with the same shape are
mixed; everything else (integer buffers, parameters only one side has) is the tuned
model's. Both models must be full-context models of the same architecture: a model trained
at a shortened encoder context is interpolated after ``runs.restore_full_context``.
Hand-written because it is a dozen lines over ``state_dict``; libraries that do model
merging (``mergekit``, peft's ``add_weighted_adapter``) target LLM checkpoints or adapters.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

__all__ = ["interpolate_weights", "weight_distance"]


def interpolate_weights(base: Any, tuned: Any, alpha: float, *, inplace: bool = False) -> Any:
    """``(1 - alpha) * base + alpha * tuned`` as a new model (or ``tuned`` itself with ``inplace``).

    ``alpha = 1`` is the tuned model, ``alpha = 0`` the base model. Raises ValueError on
    models of different architectures (a parameter both hold with different shapes).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"interpolation alpha must be in [0, 1], got {alpha}")
    out = tuned if inplace else copy.deepcopy(tuned)
    base_state = base.state_dict()
    mixed = 0
    seen: set[int] = set()  # tied weights (decoder embeddings = output projection) appear twice
    with torch.no_grad():
        for name, value in out.state_dict().items():
            other = base_state.get(name)
            if other is None or not torch.is_floating_point(value) or value.data_ptr() in seen:
                continue
            seen.add(value.data_ptr())
            if other.shape != value.shape:
                raise ValueError(
                    f"cannot interpolate: {name} is {tuple(other.shape)} in the base model and "
                    f"{tuple(value.shape)} in the tuned one (different architectures or encoder contexts)"
                )
            value.lerp_(other.to(device=value.device, dtype=value.dtype), 1.0 - alpha)
            mixed += 1
    if mixed == 0:
        raise ValueError("cannot interpolate: the two models share no floating-point weights")
    return out


def weight_distance(base: Any, tuned: Any) -> float:
    """Relative L2 distance ``||tuned - base|| / ||base||`` over the shared float weights."""
    base_state = base.state_dict()
    num = den = 0.0
    seen: set[int] = set()
    for name, value in tuned.state_dict().items():
        other = base_state.get(name)
        if other is None or not torch.is_floating_point(value) or other.shape != value.shape:
            continue
        if value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        v, o = value.detach().double(), other.detach().double().to(value.device)
        num += float(((v - o) ** 2).sum())
        den += float((o**2).sum())
    return (num / den) ** 0.5 if den > 0 else 0.0
