"""Pack short training clips into full 30 s windows (``data.pack_share``).

Why: Whisper was trained on 30 s windows cut from long audio, and that is what it sees when it
transcribes a call (sequential long-form decoding fills every window with speech). A corpus of
4 s clips, each padded with 26 s of silence, only ever shows the encoder one utterance and a
silent tail. Tuned on such clips alone, the demo's encoder kept 0.31x base WER on held-out
short clips but only 0.69x on > 60 s recordings decoded long-form (docs/forgetting.md).
distil-whisper concatenates short samples into 30 s inputs for the same reason. Packing also
makes a trainable encoder cheaper per clip: its cost is per window, whatever the window holds.

A pack is several clips' log-mel frames back to back with a short pause between them, the
pauses and the tail filled with each clip's own silence value, and the clips' transcripts joined
by spaces under the first clip's prefix (``<|startoftranscript|>...<|notimestamps|>``). Frames
are joined rather than waveforms so the feature cache is reused; only the frame or two at each
seam differ from the log-mel of the joined waveform, as Whisper normalises each clip to its own
peak anyway. Clips with timestamped labels are never packed (their times would be wrong).
Hand-written because neither transformers nor datasets pack speech-text pairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_tune.data.features import expand_features

__all__ = ["PackPlan", "PackedDataset", "plan_packs"]

PAUSE_FRAMES = (30, 80)  # 0.3-0.8 s between packed clips (10 ms frames)
# one training item: the clips it holds, the pause frames between them, its label ids
_Item = tuple[tuple[int, ...], tuple[int, ...], list[int]]


@dataclass(frozen=True)
class PackPlan:
    """Which items form each training item: one index (a single clip) or several (a pack)."""

    groups: tuple[tuple[int, ...], ...]
    pauses: tuple[tuple[int, ...], ...]  # pause frames after each clip of a group but the last

    @property
    def packed_clips(self) -> int:
        return sum(len(g) for g in self.groups if len(g) > 1)


def plan_packs(
    frames: list[int],
    packable: list[bool],
    share: float,
    max_frames: int,
    seed: int,
) -> PackPlan:
    """Deterministic plan: ``share`` of the packable clips go into windows of <= ``max_frames``."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"pack share must be in [0, 1], got {share}")
    rng = random.Random(seed)
    order = list(range(len(frames)))
    rng.shuffle(order)
    candidates = [i for i in order if packable[i] and frames[i] < max_frames]
    to_pack = set(candidates[: int(round(share * len(candidates)))])
    groups: list[tuple[int, ...]] = []
    pauses: list[tuple[int, ...]] = []
    current: list[int] = []
    gaps: list[int] = []
    used = 0
    for i in order:
        if i not in to_pack:
            groups.append((i,))
            pauses.append(())
            continue
        gap = rng.randint(*PAUSE_FRAMES) if current else 0
        if current and used + gap + frames[i] > max_frames:
            groups.append(tuple(current))
            pauses.append(tuple(gaps))
            current, gaps, used, gap = [], [], 0, 0
        if current:
            gaps.append(gap)
        current.append(i)
        used += gap + frames[i]
    if current:
        groups.append(tuple(current))
        pauses.append(tuple(gaps))
    return PackPlan(tuple(groups), tuple(pauses))


def _entries_of(ds: Any) -> list[Any]:
    """The per-item entries (labels, content frames) of a WhisperDataset or a Subset of one."""
    inner, index = getattr(ds, "dataset", None), getattr(ds, "indices", None)
    if inner is not None and index is not None:
        return [inner.entries[i] for i in index]
    entries = getattr(ds, "entries", None)
    if entries is None:
        raise TypeError(f"{type(ds).__name__} has no entries: data.pack_share needs a prepared dataset")
    return list(entries)


class PackedDataset:
    """A map dataset of single clips and packs over a ``WhisperDataset``-like ``base``.

    ``base`` items are ``{input_features [n_mels, T], labels, id, content_frames}``;
    ``entries`` (with ``labels`` and ``content_frames``) let the plan be made without
    loading any features.
    """

    def __init__(
        self,
        base: Any,
        tokenizer: Any,
        share: float,
        *,
        max_frames: int = 3000,
        max_label_tokens: int = 448,
        seed: int = 0,
    ) -> None:
        self.base = base
        entries = _entries_of(base)
        self._frames = [int(e.content_frames) for e in entries]
        self._labels = [list(e.labels) for e in entries]
        self._ids = [str(e.id) for e in entries]
        notimestamps = int(tokenizer.convert_tokens_to_ids("<|notimestamps|>"))
        self._eot = int(tokenizer.eos_token_id)
        prompt = int(tokenizer.convert_tokens_to_ids("<|startofprev|>"))  # prompted windows keep their prompt
        packable = [
            notimestamps in lab and lab[-1:] == [self._eot] and lab[:1] != [prompt] for lab in self._labels
        ]
        self._notimestamps = notimestamps
        self._tokenizer = tokenizer
        self.max_label_tokens = int(max_label_tokens)
        self.plan = plan_packs(self._frames, packable, share, max_frames, seed)
        self._items: list[_Item] = [
            item
            for g, p in zip(self.plan.groups, self.plan.pauses, strict=True)
            for item in self._split_if_too_long(g, p)
        ]

    # ------------------------------------------------------------------ labels
    def _text_tokens(self, i: int) -> list[int]:
        lab = self._labels[i]
        return lab[lab.index(self._notimestamps) + 1 : -1]

    def _joined_labels(self, group: tuple[int, ...]) -> list[int]:
        first = self._labels[group[0]]
        prefix = first[: first.index(self._notimestamps) + 1]
        texts = [self._tokenizer.decode(self._text_tokens(i)).strip() for i in group]
        body = self._tokenizer.encode(" ".join(t for t in texts if t), add_special_tokens=False)
        return [*prefix, *body, self._eot]

    def _split_if_too_long(self, group: tuple[int, ...], pauses: tuple[int, ...]) -> list[_Item]:
        """Groups whose joined transcript exceeds ``max_label_tokens`` are halved until they fit."""
        if len(group) == 1:
            return [(group, (), list(self._labels[group[0]]))]
        labels = self._joined_labels(group)
        if len(labels) <= self.max_label_tokens:
            return [(group, pauses, labels)]
        half = len(group) // 2
        return self._split_if_too_long(group[:half], pauses[: half - 1]) + self._split_if_too_long(
            group[half:], pauses[half:]
        )

    # ------------------------------------------------------------------ dataset
    def __len__(self) -> int:
        return len(self._items)

    @property
    def lengths(self) -> list[int]:
        """Frames of audio per item, pauses included (for length-grouped batching)."""
        return [sum(self._frames[i] for i in g) + sum(p) for g, p, _ in self._items]

    def __getitem__(self, k: int) -> dict[str, Any]:
        group, pauses, labels = self._items[k]
        if len(group) == 1:
            return dict(self.base[group[0]])
        parts: list[np.ndarray] = []
        fill, total = 0.0, 0
        for j, i in enumerate(group):
            feats = np.asarray(self.base[i]["input_features"], dtype=np.float32)
            fill = float(feats.min())  # this clip's silence (its padded tail)
            total = max(total, int(feats.shape[-1]))
            parts.append(feats[:, : self._frames[i]])
            if j < len(pauses):
                parts.append(np.full((feats.shape[0], pauses[j]), fill, dtype=np.float32))
        head = np.concatenate(parts, axis=1)[:, :total]
        return {
            "input_features": expand_features(head, fill, total),
            "labels": labels,
            "id": "+".join(self._ids[i] for i in group),
            "content_frames": int(head.shape[1]),
        }
