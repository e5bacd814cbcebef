"""HF Whisper -> CTranslate2 (ctranslate2's own converter) -> HF (our key map) keeps the logits.

The reference for each quantization is the original model with its weights rounded the way
CTranslate2 stores them (cast to float16/bfloat16; int8 = per-output-row absmax scale), so
the comparison isolates our conversion from the precision loss the user asked for.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from whisper_tune.models import ensure_hf_dir, export_ct2
from whisper_tune.models.random_init import save_random_whisper

QUANTIZATIONS = [
    None,
    "float16",
    "int8",
    pytest.param("bfloat16", marks=pytest.mark.slow),
    pytest.param("int8_float16", marks=pytest.mark.slow),
    pytest.param("int16", marks=pytest.mark.slow),
]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_TUNE_CACHE", str(tmp_path_factory.mktemp("wt_cache")))


@pytest.fixture(scope="module")
def perturbed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random toy Whisper whose every parameter (norms, biases) is non-trivial."""
    from transformers import WhisperForConditionalGeneration

    src = save_random_whisper(tmp_path_factory.mktemp("rand") / "m", shape="test", seed=1)
    model = WhisperForConditionalGeneration.from_pretrained(src)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_positions" in name:
                continue
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    model.save_pretrained(src)
    return src


def _rounded(model: torch.nn.Module, quantization: str | None) -> torch.nn.Module:
    ref = copy.deepcopy(model)
    if quantization is None or quantization == "float32":
        return ref
    float_dtype = {
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "int8": torch.float32,
        "int16": torch.float32,
    }.get(quantization, torch.float16)
    params = dict(ref.named_parameters())

    def fused_amax(name: str) -> torch.Tensor:
        """int16 has one scale per CTranslate2 variable: Q|K|V and cross K|V are fused there."""
        for group in (("q_proj", "k_proj", "v_proj"), ("k_proj", "v_proj")):
            stem = name.rsplit(".", 2)[0]  # "...self_attn" / "...encoder_attn"
            proj = name.rsplit(".", 2)[1]
            fused = (
                stem.endswith("self_attn")
                and len(group) == 3
                or stem.endswith("encoder_attn")
                and len(group) == 2
            )
            if fused and proj in group:
                return torch.stack([params[f"{stem}.{g}.weight"].detach().abs().max() for g in group]).max()
        return params[name].detach().abs().max()

    amax16 = {n: fused_amax(n) for n in params} if quantization == "int16" else {}
    with torch.no_grad():
        for name, p in ref.named_parameters():
            quantizable = name.endswith(".weight") and p.dim() >= 2 and "embed_positions" not in name
            if quantization == "int16" and quantizable:
                w = p.float()
                scale = torch.tensor(2**10, dtype=torch.float32) / amax16[name]
                p.copy_(torch.round(w * scale).clamp(-32768, 32767) / scale)
            elif quantization.startswith("int8") and quantizable:
                w = p.float().reshape(p.shape[0], -1)
                amax = w.abs().amax(dim=1)
                amax[amax == 0] = 127.0
                scale = 127.0 / amax
                p.copy_((torch.round(w * scale[:, None]).clamp(-128, 127) / scale[:, None]).reshape(p.shape))
            else:
                p.copy_(p.to(float_dtype).float())
    return ref


def _logits(model: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 80, 3000, generator=gen)
    dec = torch.tensor([[50257, 50362, 464, 1000, 2000, 30000], [50257, 50362, 40, 765, 284, 16611]])
    with torch.no_grad():
        return model(input_features=feats, decoder_input_ids=dec).logits


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_roundtrip_logits(perturbed_dir: Path, tmp_path: Path, quantization: str | None) -> None:
    from transformers import WhisperForConditionalGeneration

    original = WhisperForConditionalGeneration.from_pretrained(perturbed_dir).eval()
    ct2_dir = export_ct2(perturbed_dir, tmp_path / "ct2", quantization)
    back_dir = Path(ensure_hf_dir(str(ct2_dir)))
    back = WhisperForConditionalGeneration.from_pretrained(back_dir).eval()

    reference = _logits(_rounded(original, quantization))
    got = _logits(back)
    if quantization is None:
        torch.testing.assert_close(got, _logits(original), rtol=0, atol=0)
    elif quantization.startswith("int"):
        # weights agree to 1 ulp (scale rounding); amplified through the random toy network
        torch.testing.assert_close(got, reference, rtol=1e-3, atol=2e-3)
    else:
        # same rounded weights, float32 arithmetic in both
        torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)
    # and the precision loss itself stays small against the unrounded model
    loose = {None: 0.0, "float16": 5e-3, "bfloat16": 3e-2}.get(quantization, 5e-2)
    assert (got - _logits(original)).abs().max().item() <= loose


def test_roundtrip_aliases_from_default_init(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Freshly initialised norms/biases are identical, so CTranslate2 stores them as aliases."""
    from transformers import WhisperForConditionalGeneration

    from whisper_tune.models import read_ct2_model

    ct2_dir = export_ct2(tiny_model_dir, tmp_path / "ct2")
    ct2 = read_ct2_model(ct2_dir / "model.bin")
    assert len(ct2.aliases) > 10  # layer norms, zero biases, projection -> embeddings
    back = WhisperForConditionalGeneration.from_pretrained(ensure_hf_dir(str(ct2_dir)))
    original = WhisperForConditionalGeneration.from_pretrained(tiny_model_dir)
    sd0, sd1 = original.state_dict(), back.state_dict()
    assert sd0.keys() == sd1.keys()
    for k in sd0:
        torch.testing.assert_close(sd1[k], sd0[k], rtol=0, atol=0, msg=k)


def test_processor_and_generation_config_survive(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import GenerationConfig, WhisperProcessor

    back_dir = ensure_hf_dir(str(export_ct2(tiny_model_dir, tmp_path / "ct2")))
    p0 = WhisperProcessor.from_pretrained(tiny_model_dir)
    p1 = WhisperProcessor.from_pretrained(back_dir)
    assert len(p1.tokenizer) == len(p0.tokenizer) == 51864
    assert p1.tokenizer.get_vocab() == p0.tokenizer.get_vocab()
    assert p1.tokenizer.all_special_ids == p0.tokenizer.all_special_ids
    assert p1.feature_extractor.feature_size == 80
    text = " I want to freeze my card."
    assert p1.tokenizer(text).input_ids == p0.tokenizer(text).input_ids
    g0 = GenerationConfig.from_pretrained(tiny_model_dir)
    g1 = GenerationConfig.from_pretrained(back_dir)
    for field in (
        "suppress_tokens",
        "begin_suppress_tokens",
        "no_timestamps_token_id",
        "decoder_start_token_id",
        "eos_token_id",
        "alignment_heads",
        "is_multilingual",
    ):
        assert getattr(g1, field) == getattr(g0, field), field
    assert g1.no_timestamps_token_id == p1.tokenizer.convert_tokens_to_ids("<|notimestamps|>") == 50362
    assert g1.suppress_tokens and 50362 not in g1.suppress_tokens
