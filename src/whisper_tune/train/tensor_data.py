"""Features held as one tensor in memory, batched by indexing: the GPU's data path.

Why: the feature cache stores one ``.npy`` + ``.json`` per clip; reading both, expanding the
clip to 3000 frames and cutting it back to the encoder context for every item of every step
made ``whisper-tune train`` lose ~28 % of its wall time on one H200 (647 samples/s per step,
469 wall). Here the prepared data is read once (threads; ``np.load`` releases the GIL) into
one ``[N, n_mels, n_frames]`` tensor (fp16 when the run trains in half precision: the model's
first convolution runs in bf16/fp16 under autocast anyway) plus a padded label matrix, and a
batch is two index operations: no per-item Python in the collator. The DataLoader pins and
prefetches it; the Trainer copies it to the GPU without blocking (``fastpath``).

Used only when it fits the host's memory budget (:func:`fits_in_memory`); otherwise the
streaming dataset and ``WhisperCollator`` stay in place.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

__all__ = ["TensorBatches", "TensorFeatures", "fits_in_memory", "label_lengths", "materialize"]

log = logging.getLogger(__name__)


def label_lengths(ds: Any) -> list[int]:
    """Label tokens per item, read from the dataset's entries (through ``Subset``) when it has them."""
    base, index = (ds.dataset, list(ds.indices)) if isinstance(ds, torch.utils.data.Subset) else (ds, None)
    entries = getattr(base, "entries", None)
    if entries is None:
        return [len(ds[i]["labels"]) for i in range(len(ds))]
    picked = entries if index is None else [entries[i] for i in index]
    return [len(e.labels) for e in picked]


def fits_in_memory(n_items: int, n_mels: int, n_frames: int, itemsize: int, budget_bytes: float) -> bool:
    return n_items * n_mels * n_frames * itemsize <= budget_bytes


class TensorFeatures(torch.utils.data.Dataset):
    """``features[i]`` (a view), labels and ids of a materialized set; ``__getitems__`` batches."""

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, label_len: torch.Tensor, ids: list[str]
    ) -> None:
        self.features = features
        self.labels = labels
        self.label_len = label_len
        self.ids = ids

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def lengths(self) -> list[int]:  # frames per item are not kept; length grouping reads them earlier
        raise TypeError("TensorFeatures keeps no audio lengths; read them before materializing")

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = int(self.label_len[i])
        return {"input_features": self.features[i], "labels": self.labels[i, :n].tolist(), "id": self.ids[i]}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """One batch as tensors (the DataLoader calls this instead of ``__getitem__`` per item).

        Labels keep the set's full width (its longest label, -100 after each row's end), so every
        batch has one shape: a compiled model traces one graph instead of recompiling with a
        symbolic label length (measured ~20 s more warm-up on whisper-small), and the loss is
        unchanged (-100 is ignored; the decoder is causal, so padding after a row's end changes
        nothing before it). At batch >= 64 the batch's longest label is the set's anyway.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"input_features": self.features[idx], "labels": self.labels[idx]}


class TensorBatches:
    """Collator for :class:`TensorFeatures`: features to fp32 (autocast casts again) and the
    decoder start token stripped once when every row starts with it (as ``WhisperCollator``)."""

    def __init__(self, decoder_start_token_id: int, fallback: Any) -> None:
        self.start = int(decoder_start_token_id)
        self.fallback = fallback  # for plain item lists (e.g. a Subset used by the guard)

    def __call__(self, batch: Any) -> dict[str, torch.Tensor]:
        if isinstance(batch, list):
            return dict(self.fallback(batch))
        labels = batch["labels"]
        if labels.shape[1] and bool((labels[:, 0] == self.start).all()):
            labels = labels[:, 1:]
        return {"input_features": batch["input_features"].float(), "labels": labels.contiguous()}


def materialize(
    ds: Any, n_frames: int, dtype: torch.dtype = torch.float16, threads: int = 8
) -> TensorFeatures:
    """Read every item of ``ds`` (WhisperDataset or a Subset of one) into a :class:`TensorFeatures`.

    Items whose audio is longer than ``n_frames`` raise (never truncated silently), as the collator does.
    """
    n = len(ds)
    first = ds[0]["input_features"] if n else np.zeros((80, n_frames), dtype=np.float32)
    n_mels = int(np.asarray(first).shape[0])
    feats = torch.empty((n, n_mels, n_frames), dtype=dtype)
    lens = label_lengths(ds)
    width = max(lens) if lens else 0
    labels = torch.full((n, width), -100, dtype=torch.long)
    ids: list[str] = [""] * n

    def load(i: int) -> None:
        item = ds[i]
        need = int(item.get("content_frames", 0) or 0)
        if need > n_frames:
            raise ValueError(
                f"item {item.get('id', i)} has {need} frames of audio but the context is {n_frames} frames"
            )
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(item["input_features"])[:, :n_frames]))
        feats[i, :, : x.shape[1]] = x
        if x.shape[1] < n_frames:
            feats[i, :, x.shape[1] :] = float(x.min()) if x.numel() else 0.0
        row = list(item["labels"])
        labels[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        ids[i] = str(item.get("id", i))

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(load, range(n)))
    log.info("data in memory: %d items, %.2f GB of features", n, feats.numel() * feats.element_size() / 1e9)
    return TensorFeatures(feats, labels, torch.tensor(lens, dtype=torch.long), ids)
