"""Timestamped training labels: keep Whisper able to predict segment times after tuning.

Why: Whisper decodes long recordings sequentially, 30 s at a time, and relies on its own
timestamp tokens (``<|0.00|> text <|4.20|>``) to know where a window's last segment ends and
where the next window starts. A model tuned only on ``<|notimestamps|>`` labels loses that
skill (transformers #30148, faster-whisper #428): its long-form output degrades and its
segments run together. distil-whisper keeps timestamp tokens on a share of its training
samples for this reason. Here a deterministic share of the training clips (chosen by a hash
of the clip id, so every worker and every epoch agrees) gets labels of the form

    <|startoftranscript|> [language, task] <|0.00|> text <|T|> <|endoftext|>

with ``T`` the clip's duration rounded to Whisper's 20 ms timestamp grid. The rest keep
``<|notimestamps|>``, which is how the model is evaluated on short clips.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["TIME_PRECISION", "is_timestamped", "pick", "timestamp_labels"]

TIME_PRECISION = 0.02  # seconds per timestamp token
MAX_TIME = 30.0


def pick(item_id: str, share: float, salt: str = "timestamps") -> bool:
    """Whether ``item_id`` is in the timestamped share (stable across processes and runs)."""
    if share <= 0.0:
        return False
    if share >= 1.0:
        return True
    h = hashlib.sha1(f"{salt}\0{item_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


def _timestamp_id(tokenizer: Any, seconds: float) -> int:
    steps = int(round(min(max(seconds, 0.0), MAX_TIME) / TIME_PRECISION))
    token = f"<|{steps * TIME_PRECISION:.2f}|>"
    tid = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(tid, int) or tid == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no timestamp token {token}")
    return tid


def timestamp_labels(labels: list[int], tokenizer: Any, end_s: float) -> list[int]:
    """``labels`` (prefix + text + eot, with ``<|notimestamps|>``) rewritten with start/end times."""
    no_ts = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    eot = tokenizer.eos_token_id
    if no_ts not in labels:
        return list(labels)  # already timestamped, or a prefix this does not know
    cut = labels.index(no_ts)
    body = labels[cut + 1 :]
    if body and body[-1] == eot:
        body = body[:-1]
    start = _timestamp_id(tokenizer, 0.0)
    end = _timestamp_id(tokenizer, max(end_s, TIME_PRECISION))
    return [*labels[:cut], start, *body, end, eot]


def is_timestamped(labels: list[int], tokenizer: Any) -> bool:
    return tokenizer.convert_tokens_to_ids("<|0.00|>") in labels
