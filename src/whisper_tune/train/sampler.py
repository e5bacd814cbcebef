"""Length-grouped batches for the HF Trainer (``train.group_by_length``).

Why: with a shortened encoder context the label (decoder) padding, and for variable-context
setups the audio padding, are what is left to waste; grouping clips of similar length cuts
both, while every clip is still seen exactly once per epoch and the order still changes
from epoch to epoch (HF's own ``group_by_length`` measures items by their ``input_ids``,
which Whisper's items do not have: their length is the audio's, known from the manifest).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from whisper_tune.errors import UserError

__all__ = ["LengthBucketSampler"]


class LengthBucketSampler(Sampler[int]):
    """Indices ordered so each run of ``batch_size`` consecutive indices has similar lengths.

    Why: with a shortened encoder the label (decoder) padding and, for variable-context setups,
    the audio padding are what is left to waste; grouping similar lengths cuts both. Each epoch:
    shuffle (seed + epoch), cut into chunks of ``batch_size * bucket_multiplier``, sort each
    chunk by length, split into batches, shuffle the full batches (the longest batch first, so
    an out-of-memory shows at step 1), and put the one partial batch last so a DataLoader with
    ``drop_last`` drops exactly it. Use as ``DataLoader(ds, batch_size=B, sampler=sampler)``
    (or return it from a Trainer's ``_get_train_sampler``). Every index appears exactly once per
    epoch; call :meth:`set_epoch` for a new order.
    """

    def __init__(
        self,
        lengths: Sequence[float],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket_multiplier: int = 50,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        if bucket_multiplier < 1:
            raise UserError(f"bucket_multiplier must be >= 1, got {bucket_multiplier}")
        self.lengths = [float(x) for x in lengths]
        for i, x in enumerate(self.lengths):
            if not math.isfinite(x):
                raise UserError(f"length of item {i} is not a finite number: {x!r}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.bucket_multiplier = int(bucket_multiplier)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self) -> list[list[int]]:
        """This epoch's batches (the partial one, if any, last)."""
        n = len(self.lengths)
        order = list(range(n))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        chunk = self.batch_size * self.bucket_multiplier
        if not self.shuffle:
            chunk = max(n, 1)
        batches: list[list[int]] = []
        for start in range(0, n, chunk):
            part = sorted(order[start : start + chunk], key=lambda i: -self.lengths[i])
            batches.extend(part[j : j + self.batch_size] for j in range(0, len(part), self.batch_size))
        full = [b for b in batches if len(b) == self.batch_size]
        partial = [b for b in batches if len(b) < self.batch_size]
        # Several chunks may each end in a partial batch: merge them into full ones + one remainder.
        rest = sorted((i for b in partial for i in b), key=lambda i: -self.lengths[i])
        full.extend(
            rest[j : j + self.batch_size]
            for j in range(0, len(rest) - len(rest) % self.batch_size, self.batch_size)
        )
        remainder = rest[len(rest) - len(rest) % self.batch_size :]
        if self.shuffle and full:
            longest = max(range(len(full)), key=lambda k: max(self.lengths[i] for i in full[k]))
            first = full.pop(longest)
            rng.shuffle(full)
            full.insert(0, first)
        return full + ([remainder] if remainder else [])

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch

    def __len__(self) -> int:
        return len(self.lengths)
