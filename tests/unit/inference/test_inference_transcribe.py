"""Batched transcription: order, feature reuse, long audio, token budgets.

Moved from tests/unit/evaluate/test_eval_transcribe.py: ``transcribe``/``transcribe_bank``
now run the inference backends' loop (an ``HFBackend`` around the loaded model).

Most tests drive ``transcribe_bank`` with a fake model whose "transcript" is a number
computed from each clip's features (so order and joining are checkable exactly without
paying for generation on a contended CPU); one test runs a real toy Whisper end to end.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from whisper_tune.inference import FeatureBank, resolve_device, token_cap, transcribe, transcribe_bank


@pytest.fixture(scope="module")
def proc():
    from whisper_tune.models.random_init import make_processor

    return make_processor()


class FakeWhisper(torch.nn.Module):
    """generate() -> token ids spelling ``int(1000 * std(features))`` of each row."""

    def __init__(self, tokenizer, multilingual: bool = False, positions: int = 1500):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.tok = tokenizer
        self.config = SimpleNamespace(max_target_positions=448, max_source_positions=positions)
        self.shapes: list[tuple[int, ...]] = []
        self.generation_config = SimpleNamespace(is_multilingual=multilingual)
        self.calls: list[tuple[int, int]] = []  # (batch size, max_new_tokens)
        self.kwargs: list[dict] = []

    def generate(self, input_features, max_new_tokens, **kwargs):
        self.kwargs.append(kwargs)
        self.shapes.append(tuple(input_features.shape))
        self.calls.append((input_features.shape[0], max_new_tokens))
        words = [str(int(1000 * float(x.std()))) for x in input_features]
        ids = [self.tok(w, add_special_tokens=False).input_ids for w in words]
        n = max(len(i) for i in ids)
        eot = self.tok.convert_tokens_to_ids("<|endoftext|>")
        return torch.tensor([i + [eot] * (n - len(i)) for i in ids])


def _clip(seconds: float, seed: int, amp: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


def test_batched_equals_one_by_one_in_input_order(proc):
    model = FakeWhisper(proc.tokenizer)
    clips = [_clip(3.0, 0, 0.5), _clip(1.0, 1, 0.001), _clip(2.0, 2, 0.05), np.zeros(8000, np.float32)]
    batched = transcribe(model, proc, clips, batch_size=3)
    single = [transcribe(model, proc, [c], batch_size=1)[0] for c in clips]
    assert batched == single
    assert len(set(batched)) == 4 and all(t.isdigit() for t in batched)
    assert transcribe(model, proc, [], batch_size=2) == []


def _decoding_kwargs(model: FakeWhisper) -> list[dict]:
    """generate() kwargs without ``return_timestamps`` (False here), ``return_dict_in_generate``
    and ``force_unique_generate_call`` (True: one decode per window), which the backend always passes."""
    assert all(k.get("return_timestamps") is False for k in model.kwargs)
    assert all(k.get("return_dict_in_generate") is True for k in model.kwargs)
    assert all(k.get("force_unique_generate_call") is True for k in model.kwargs)
    always = ("return_timestamps", "return_dict_in_generate", "force_unique_generate_call")
    return [{k: v for k, v in kw.items() if k not in always} for kw in model.kwargs]


def test_generation_kwargs_and_language(proc):
    en_only = FakeWhisper(proc.tokenizer)
    transcribe(en_only, proc, [_clip(1.0, 0)], language="en", num_beams=2)
    assert _decoding_kwargs(en_only) == [
        {"num_beams": 2, "do_sample": False}
    ]  # English-only: no language token
    multi = FakeWhisper(proc.tokenizer, multilingual=True)
    transcribe(multi, proc, [_clip(1.0, 0)], language="en")
    assert _decoding_kwargs(multi) == [
        {"num_beams": 1, "do_sample": False, "language": "en", "task": "transcribe"}
    ]


def test_batches_sorted_by_length_get_fitting_budgets(proc):
    model = FakeWhisper(proc.tokenizer)
    clips = [_clip(10.0, 0), _clip(1.0, 1), _clip(2.0, 2), _clip(12.0, 3)]
    transcribe(model, proc, clips, batch_size=2)
    # shortest two (1 s, 2 s) together: 2*8+16; longest two (10 s, 12 s): 12*8+16
    assert model.calls == [(2, 32), (2, 112)]
    model.calls.clear()
    transcribe(model, proc, clips, batch_size=4, max_new_tokens=5)
    assert model.calls == [(4, 5)]


class _CountingFE:
    def __init__(self, fe):
        self.fe, self.calls = fe, 0
        self.feature_size, self.sampling_rate = fe.feature_size, fe.sampling_rate

    def __call__(self, *a, **k):
        self.calls += 1
        return self.fe(*a, **k)


def test_features_computed_once_and_reused(proc):
    counting = SimpleNamespace(
        feature_extractor=_CountingFE(proc.feature_extractor), tokenizer=proc.tokenizer
    )
    bank = FeatureBank([_clip(1.0, i) for i in range(5)])
    first = transcribe_bank(FakeWhisper(proc.tokenizer), counting, bank, batch_size=4)
    assert counting.feature_extractor.calls == 1  # 5 clips in one extractor batch of 32
    second = transcribe_bank(FakeWhisper(proc.tokenizer), counting, bank, batch_size=2)
    assert counting.feature_extractor.calls == 1  # the second model reuses them
    assert first == second
    assert bank.features(proc)[0].shape == (80, 3000)


def test_long_audio_is_split_and_joined(proc):
    model = FakeWhisper(proc.tokenizer)
    long_clip = np.concatenate([_clip(20.0, 7, 0.3), np.zeros(8000, np.float32), _clip(20.0, 8, 0.02)])
    bank = FeatureBank([_clip(2.0, 9), long_clip])
    assert [p.clip for p in bank.pieces()] == [0, 1, 1]  # 40.5 s -> 2 pieces of <= 30 s
    assert max(bank.durations()) <= 30.0
    assert sum(len(p.audio) for p in bank.pieces()[1:]) == len(long_clip)  # nothing dropped
    whole = transcribe_bank(model, proc, bank, batch_size=3)
    parts = transcribe(model, proc, [p.audio for p in bank.pieces()[1:]])
    assert whole[1] == f"{parts[0]} {parts[1]}" and parts[0] != parts[1]


def test_shortened_encoder_context_gets_cut_features_and_shorter_pieces(proc):
    """A model tuned with a 10 s encoder context (500 positions) gets [80, 1000] features."""
    short = FakeWhisper(proc.tokenizer, positions=500)
    full = FakeWhisper(proc.tokenizer)
    bank = FeatureBank([_clip(4.0, 0), _clip(25.0, 1)])
    out_short = transcribe_bank(short, proc, bank, batch_size=8)
    pieces = bank.pieces(1000)
    n = len(pieces)
    assert short.shapes == [(n, 80, 1000)]  # 4 s clip + the 25 s clip in >= 3 pieces of <= 10 s
    assert [p.clip for p in pieces] == [0] + [1] * (n - 1) and n >= 4
    assert max(bank.durations(1000)) <= 10.0
    out_full = transcribe_bank(full, proc, bank, batch_size=8)
    assert full.shapes == [(2, 80, 3000)]
    assert len(out_short[1].split()) == n - 1 and len(out_full[1].split()) == 1
    # features of the short clip agree on the frames both contexts see
    np.testing.assert_array_equal(bank.features(proc, 1000)[0], bank.features(proc)[0][:, :1000])


def test_real_toy_whisper_with_short_context(proc):
    from whisper_tune.models.random_init import make_random_whisper

    model, p = make_random_whisper("test", seed=3, max_source_positions=250)  # 5 s context
    out = transcribe(model, p, [_clip(2.0, 1), _clip(7.0, 2)], batch_size=4, max_new_tokens=2)
    assert len(out) == 2 and all(out)


def test_token_budget():
    assert token_cap(2.0) == 32  # 8 tokens/s + 16
    # was 256 (8 tokens/s + 16) before evaluation and serving shared one rule: now at most 224 new
    # tokens a window without an explicit cap, like OpenAI's decoder and the server
    assert token_cap(29.9) == 224
    assert token_cap(29.9, max_new_tokens=1000) == 444  # decoder has 448 positions
    assert token_cap(5.0, max_new_tokens=7) == 7
    # a prompt takes decoder positions: 448 - 224 prompt tokens - 4 start tokens
    assert token_cap(29.9, prompt_len=224) == 220
    assert token_cap(29.9, prompt_len=224, max_new_tokens=1000) == 220
    assert token_cap(0.0) == 16 and token_cap(1.0, positions=20) == 10


def test_bad_inputs(proc):
    model = FakeWhisper(proc.tokenizer)
    with pytest.raises(ValueError, match="mono"):
        transcribe(model, proc, [np.zeros((2, 16000), np.float32)])
    with pytest.raises(ValueError, match="batch_size"):
        transcribe(model, proc, [_clip(1.0, 0)], batch_size=0)


def test_real_toy_whisper_generates_within_budget(proc):
    from whisper_tune.models.random_init import make_random_whisper

    model, p = make_random_whisper("test", seed=3)
    model.train()
    out = transcribe(model, p, [_clip(1.0, 4), _clip(2.0, 5)], batch_size=2, max_new_tokens=3)
    assert len(out) == 2 and all(isinstance(t, str) and t for t in out)
    assert all(len(p.tokenizer(t, add_special_tokens=False).input_ids) <= 4 for t in out)
    assert model.training  # mode restored


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
