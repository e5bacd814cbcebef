"""The Trainer's ``compute_metrics``: WER of generated ids against the labels, per evaluation.

Why here and not in ``scoring``: it decodes token ids with the tokenizer the Trainer holds and
follows the Trainer's prediction format (``-100`` padding, logits vs ids); the scoring itself
is ``whisper_tune.scoring.error_rates``, the same function ``evaluate`` reports with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whisper_tune.scoring.normalizers import get_normalizer
from whisper_tune.scoring.wer import error_rates

__all__ = ["make_compute_metrics"]


def make_compute_metrics(
    processor: Any, normalizer_kind: str = "whisper_en"
) -> Callable[[Any], dict[str, float]]:
    """``compute_metrics`` for a ``Seq2SeqTrainer`` with ``predict_with_generate=True``.

    Returns ``{"wer": normalized WER, "wer_ortho": orthographic WER, "cer": normalized CER}``
    (fractions); the trainer prefixes them (``eval_wer`` is the checkpoint score, lower is
    better). ``-100`` in labels or (padded) predictions is replaced by the pad id before
    decoding.
    """
    import numpy as np

    tokenizer = getattr(processor, "tokenizer", processor)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    norm = get_normalizer(normalizer_kind)

    def compute_metrics(pred: Any) -> dict[str, float]:
        preds = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        preds = np.asarray(preds)
        if preds.ndim == 3:  # logits were returned instead of generated ids
            preds = preds.argmax(-1)
        labels = np.asarray(pred.label_ids)
        preds = np.where(preds < 0, pad_id, preds)
        labels = np.where(labels < 0, pad_id, labels)
        hyps = tokenizer.batch_decode(preds.tolist(), skip_special_tokens=True)
        refs = tokenizer.batch_decode(labels.tolist(), skip_special_tokens=True)
        normed = error_rates(refs, hyps, norm)
        ortho = error_rates(refs, hyps, "none")
        return {"wer": float(normed["wer"]), "wer_ortho": float(ortho["wer"]), "cer": float(normed["cer"])}

    return compute_metrics
