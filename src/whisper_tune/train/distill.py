"""Keep the tuned decoder close to the base model: a KL term to the frozen base's token distributions.

Why: Whisper's decoder is a language model. Fine-tuned on a narrow corpus it learns that
corpus' phrasing ("How do I ...?") and imposes it on other speech ("Had he married" ->
"How do you marry"). Learning without Forgetting (Li & Hoiem 2016) and the KL-regularised
fine-tuning used for LLMs keep the student's next-token distributions near the teacher's
on the training data itself, so the model must *justify* every shift with the audio:

    loss = cross_entropy(labels) + kl_weight * KL(p_base || p_tuned)   (label positions only)

The teacher is a frozen copy of the weights training starts from, on the same device. With
a frozen encoder (``train.strategy: decoder``, cached encoder outputs) its extra cost is one
decoder forward per step; with a trainable encoder it also runs its own encoder. The term
is the forward KL (teacher-weighted), averaged over label tokens.

Hand-written because transformers has no KL-to-reference option for Seq2SeqTrainer
(TRL's trainers that have one are for causal LMs).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ReferenceModel", "kl_to_reference"]

IGNORE = -100


def kl_to_reference(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean over label positions of KL(teacher || student); 0 when there is no label token."""
    mask = labels != IGNORE
    if not bool(mask.any()):
        return student_logits.sum() * 0.0
    s = F.log_softmax(student_logits[mask].float(), dim=-1)
    t = F.log_softmax(teacher_logits[mask].float(), dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


class ReferenceModel:
    """A frozen copy of the starting weights that scores a training batch."""

    def __init__(self, model: Any) -> None:
        ref = copy.deepcopy(_unwrap(model))
        ref.eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        self.model = ref

    @torch.no_grad()
    def logits(self, inputs: dict[str, Any]) -> torch.Tensor:
        first = next(self.model.parameters())
        kwargs = {k: v for k, v in inputs.items() if k in _MODEL_INPUTS}
        if first.device != _device_of(kwargs, first.device):
            self.model.to(_device_of(kwargs, first.device))
        return self.model(**kwargs).logits

    def kl(self, student_logits: torch.Tensor, inputs: dict[str, Any]) -> torch.Tensor:
        return kl_to_reference(student_logits, self.logits(inputs), inputs["labels"])


_MODEL_INPUTS = {"input_features", "encoder_outputs", "labels", "decoder_input_ids", "attention_mask"}


def _device_of(kwargs: dict[str, Any], default: torch.device) -> torch.device:
    for v in kwargs.values():
        if isinstance(v, torch.Tensor):
            return v.device
        if isinstance(v, (tuple, list)) and v and isinstance(v[0], torch.Tensor):
            return v[0].device
    return default


def _unwrap(model: Any) -> Any:
    """The plain module under DDP / torch.compile / PEFT wrappers (a LoRA model keeps its adapters)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner
