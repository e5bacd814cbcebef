"""Sequential long-form decoding survives a failure of Transformers' token timestamps."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from whisper_tune.evaluate.longform import _sequential
from whisper_tune.inference import DecodeOptions


class _Model(torch.nn.Module):
    """generate(): one segment per recording; token timestamps fail for a recording of 2 s."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[int, bool]] = []

    def generate(self, x: torch.Tensor, **kw: Any) -> dict[str, Any]:
        timed = bool(kw.get("return_token_timestamps"))
        self.calls.append((int(x.shape[0]), timed))
        mask = kw.get("attention_mask")  # passed for long input or word times only
        lengths = mask.sum(-1).tolist() if mask is not None else [int(x.shape[-1])] * int(x.shape[0])
        if timed and any(n == 200 for n in lengths):
            raise IndexError("index 0 is out of bounds for dimension 0 with size 0")
        segs = []
        for n in lengths:
            seg = {"tokens": torch.tensor([1, 2]), "start": 0.0, "end": n / 100}
            if timed:
                seg["token_timestamps"] = torch.tensor([0.5, n / 100])
            segs.append([seg])
        return {"segments": segs}


def _backend() -> Any:
    def fe(batch: list[np.ndarray], **_kw: Any) -> dict[str, torch.Tensor]:
        frames = max(len(a) for a in batch) // 160
        mask = torch.tensor([[1] * (len(a) // 160) + [0] * (frames - len(a) // 160) for a in batch])
        return {"input_features": torch.zeros(len(batch), 80, frames), "attention_mask": mask}

    fe.n_samples = 480000  # type: ignore[attr-defined]
    tok = SimpleNamespace(decode=lambda ids, skip_special_tokens=True: " hi there")
    return SimpleNamespace(
        model=_Model(),
        feature_extractor=fe,
        tokenizer=tok,
        can_align=True,
        eot=50256,
        max_target_positions=448,
        multilingual=False,
        group_words=lambda ids, times: [
            {"word": " hi", "start": times[0], "end": times[1], "tokens": [1]},
            {"word": " there", "start": times[1], "end": times[2], "tokens": [2]},
        ],
    )


def test_a_recording_whose_word_times_fail_is_decoded_without_them(caplog: pytest.LogCaptureFixture) -> None:
    b = _backend()
    audios = [
        np.zeros(16000 * 3, np.float32),
        np.zeros(16000 * 2, np.float32),
        np.zeros(16000 * 4, np.float32),
    ]
    out = _sequential(b, audios, DecodeOptions(word_timestamps=True), batch_size=8)
    assert len(out) == 3 and all(len(r) == 1 for r in out)
    assert [r[0].words is not None for r in out] == [True, False, True]  # only the failing one lost them
    assert [w.word for w in out[0][0].words or []] == [" hi", " there"]
    assert b.model.calls == [(3, True), (1, True), (1, True), (1, False), (1, True)]
    assert "recording 1: word times failed" in caplog.text
    plain = _sequential(_backend(), audios, DecodeOptions(), batch_size=8)  # no word times asked: one call
    assert all(r[0].words is None for r in plain)
