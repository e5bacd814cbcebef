"""CTranslate2 Whisper -> self-contained Hugging Face model directory.

Why: fine-tuning needs ``WhisperForConditionalGeneration``; the weights we can reach are
faster-whisper (CTranslate2) files. The map below is the exact inverse of
``ctranslate2.converters.transformers.WhisperLoader`` (see the installed
``ctranslate2/converters/transformers.py``): fused Q|K|V and K|V projections are split,
int8/int16 weights are dequantized with their ``*_scale``, float16/bfloat16 are widened to
float32, aliases are resolved. The result also carries a processor (tokenizer with the
model's full vocabulary, timestamp tokens included) and a generation config, so
``from_pretrained(dir)`` + ``generate()`` transcribes with no extra arguments.

Note on the K bias: CTranslate2 stores a zero bias slot for K (Whisper's ``k_proj`` has no
bias). Any value there would add ``q . b_k`` to every logit of a query row, which softmax
ignores, so dropping it is exact.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from whisper_tune.models.ct2_format import Ct2FormatError, Ct2Model

__all__ = [
    "ConvertedWhisper",
    "ENCODER_LAYER_MAP",
    "DECODER_LAYER_MAP",
    "TOP_LEVEL_MAP",
    "build_generation_config",
    "build_processor",
    "ct2_to_hf",
    "read_ct2_vocabulary",
]

log = logging.getLogger(__name__)

# (HF key suffix, CT2 variable suffix, (part index, number of parts) of a fused tensor or None)
Part = tuple[int, int] | None
_ATTN_SELF: list[tuple[str, str, Part]] = [
    ("self_attn.q_proj.weight", "self_attention/linear_0/weight", (0, 3)),
    ("self_attn.k_proj.weight", "self_attention/linear_0/weight", (1, 3)),
    ("self_attn.v_proj.weight", "self_attention/linear_0/weight", (2, 3)),
    ("self_attn.q_proj.bias", "self_attention/linear_0/bias", (0, 3)),
    ("self_attn.v_proj.bias", "self_attention/linear_0/bias", (2, 3)),
    ("self_attn.out_proj.weight", "self_attention/linear_1/weight", None),
    ("self_attn.out_proj.bias", "self_attention/linear_1/bias", None),
    ("self_attn_layer_norm.weight", "self_attention/layer_norm/gamma", None),
    ("self_attn_layer_norm.bias", "self_attention/layer_norm/beta", None),
]
_FFN: list[tuple[str, str, Part]] = [
    ("fc1.weight", "ffn/linear_0/weight", None),
    ("fc1.bias", "ffn/linear_0/bias", None),
    ("fc2.weight", "ffn/linear_1/weight", None),
    ("fc2.bias", "ffn/linear_1/bias", None),
    ("final_layer_norm.weight", "ffn/layer_norm/gamma", None),
    ("final_layer_norm.bias", "ffn/layer_norm/beta", None),
]
_ATTN_CROSS: list[tuple[str, str, Part]] = [
    ("encoder_attn.q_proj.weight", "attention/linear_0/weight", None),
    ("encoder_attn.q_proj.bias", "attention/linear_0/bias", None),
    ("encoder_attn.k_proj.weight", "attention/linear_1/weight", (0, 2)),
    ("encoder_attn.v_proj.weight", "attention/linear_1/weight", (1, 2)),
    ("encoder_attn.v_proj.bias", "attention/linear_1/bias", (1, 2)),
    ("encoder_attn.out_proj.weight", "attention/linear_2/weight", None),
    ("encoder_attn.out_proj.bias", "attention/linear_2/bias", None),
    ("encoder_attn_layer_norm.weight", "attention/layer_norm/gamma", None),
    ("encoder_attn_layer_norm.bias", "attention/layer_norm/beta", None),
]
ENCODER_LAYER_MAP = _ATTN_SELF + _FFN
DECODER_LAYER_MAP = _ATTN_SELF + _ATTN_CROSS + _FFN
TOP_LEVEL_MAP: list[tuple[str, str, Part]] = [
    ("model.encoder.conv1.weight", "encoder/conv1/weight", None),
    ("model.encoder.conv1.bias", "encoder/conv1/bias", None),
    ("model.encoder.conv2.weight", "encoder/conv2/weight", None),
    ("model.encoder.conv2.bias", "encoder/conv2/bias", None),
    ("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings", None),
    ("model.encoder.layer_norm.weight", "encoder/layer_norm/gamma", None),
    ("model.encoder.layer_norm.bias", "encoder/layer_norm/beta", None),
    ("model.decoder.embed_tokens.weight", "decoder/embeddings/weight", None),
    ("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings", None),
    ("model.decoder.layer_norm.weight", "decoder/layer_norm/gamma", None),
    ("model.decoder.layer_norm.bias", "decoder/layer_norm/beta", None),
]
# Options stored as scalars: name -> required value (None = any value accepted).
_SCALARS: dict[str, int | None] = {
    "encoder/num_heads": None,
    "decoder/num_heads": None,
    "decoder/activation": 3,  # common_spec.Activation.GELU
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": None,
    "decoder/scale_alibi": None,
    "decoder/alignment_heads": None,
    "decoder/alignment_layer": None,
    "decoder/start_from_zero_embedding": 0,
}
_TIMESTAMP = re.compile(r"^<\|\d+\.\d\d\|>$")


@dataclass
class ConvertedWhisper:
    """HF state dict + config values derived from a CTranslate2 Whisper."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    tied: bool
    source_dtypes: dict[str, int]


def _layer_count(m: Ct2Model, prefix: str) -> int:
    pat = re.compile(rf"^{prefix}/layer_(\d+)/")
    ids = {int(mt.group(1)) for n in itertools.chain(m.variables, m.aliases) if (mt := pat.match(n))}
    if not ids or ids != set(range(len(ids))):
        raise Ct2FormatError(f"{m.source}: {prefix} layers are missing or not numbered 0..N-1: {sorted(ids)}")
    return len(ids)


def _take(m: Ct2Model, name: str, part: Part, used: set[str]) -> torch.Tensor:
    if not m.has(name):
        raise Ct2FormatError(f"{m.source}: expected variable '{name}' is missing (not a Whisper model?)")
    used.add(name)
    t = m.tensor(name)
    if part is None:
        return t
    idx, n = part
    if t.shape[0] % n:
        raise Ct2FormatError(f"{m.source}: '{name}' has {t.shape[0]} rows, not divisible into {n} parts")
    return t.chunk(n, dim=0)[idx].contiguous()


def ct2_to_hf(m: Ct2Model) -> ConvertedWhisper:
    """Map every CTranslate2 Whisper variable to its HF key; error on anything unexpected."""
    if m.spec_name != "WhisperSpec":
        raise Ct2FormatError(
            f"{m.source}: spec '{m.spec_name}' is not a Whisper model (expected WhisperSpec)"
        )
    for name, required in _SCALARS.items():
        if m.has(name) and required is not None and int(m.scalar(name)) != required:
            raise Ct2FormatError(
                f"{m.source}: '{name}' is {m.scalar(name)}, but a Whisper model needs {required}"
            )
    n_enc, n_dec = _layer_count(m, "encoder"), _layer_count(m, "decoder")
    used: set[str] = set(n for n in _SCALARS if m.has(n))
    sd: dict[str, torch.Tensor] = {}
    plan: list[tuple[str, str, Part]] = list(TOP_LEVEL_MAP)
    for i in range(n_enc):
        plan += [
            (f"model.encoder.layers.{i}.{h}", f"encoder/layer_{i}/{c}", p) for h, c, p in ENCODER_LAYER_MAP
        ]
    for i in range(n_dec):
        plan += [
            (f"model.decoder.layers.{i}.{h}", f"decoder/layer_{i}/{c}", p) for h, c, p in DECODER_LAYER_MAP
        ]
    for hf_key, ct2_name, part in plan:
        sd[hf_key] = _take(m, ct2_name, part, used)
    # The K slot of fused biases is consumed (dropped, see module docstring).
    # Projection: tied to the embeddings unless the model stores its own matrix.
    proj = "decoder/projection/weight"
    tied = True
    if m.has(proj):
        used.add(proj)
        if m.resolve_name(proj) != m.resolve_name("decoder/embeddings/weight"):
            w = m.tensor(proj)
            if not torch.equal(w, sd["model.decoder.embed_tokens.weight"]):
                tied = False
                sd["proj_out.weight"] = w
    if m.has("decoder/projection/bias"):
        used.add("decoder/projection/bias")
        if m.tensor("decoder/projection/bias").abs().max() > 0:
            raise Ct2FormatError(
                f"{m.source}: a non-zero output projection bias is not supported by HF Whisper"
            )
    leftovers = []
    for name in itertools.chain(m.variables, m.aliases):
        if name in used or name.endswith("_scale") and name[: -len("_scale")] in used:
            continue
        if m.variables.get(m.resolve_name(name)) is not None and not m.variables[m.resolve_name(name)].shape:
            log.warning("%s: ignoring unknown option '%s' = %s", m.source, name, m.scalar(name))
            continue
        leftovers.append(name)
    if leftovers:
        raise Ct2FormatError(f"{m.source}: unexpected variables not mapped to Whisper: {leftovers[:8]}")

    conv1 = sd["model.encoder.conv1.weight"]
    d_model, n_mels = conv1.shape[0], conv1.shape[1]
    cfg = {
        "vocab_size": sd["model.decoder.embed_tokens.weight"].shape[0],
        "num_mel_bins": n_mels,
        "d_model": d_model,
        "encoder_layers": n_enc,
        "decoder_layers": n_dec,
        "encoder_attention_heads": int(m.scalar("encoder/num_heads")),
        "decoder_attention_heads": int(m.scalar("decoder/num_heads")),
        "encoder_ffn_dim": sd["model.encoder.layers.0.fc1.weight"].shape[0],
        "decoder_ffn_dim": sd["model.decoder.layers.0.fc1.weight"].shape[0],
        "max_source_positions": sd["model.encoder.embed_positions.weight"].shape[0],
        "max_target_positions": sd["model.decoder.embed_positions.weight"].shape[0],
        "tie_word_embeddings": tied,
    }
    dtypes: dict[str, int] = {}
    for v in m.variables.values():
        if v.shape:
            dtypes[v.dtype] = dtypes.get(v.dtype, 0) + 1
    return ConvertedWhisper(sd, cfg, tied, dtypes)


def read_ct2_vocabulary(ct2_dir: Path) -> list[str]:
    """The model's token list (``vocabulary.txt`` one per line, or ``vocabulary.json``)."""
    txt, js = ct2_dir / "vocabulary.txt", ct2_dir / "vocabulary.json"
    if txt.is_file():
        tokens = txt.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        return tokens
    if js.is_file():
        data = json.loads(js.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise Ct2FormatError(f"{js}: expected a JSON list of token strings")
        return data
    raise Ct2FormatError(f"{ct2_dir}: no vocabulary.txt or vocabulary.json (not a CTranslate2 model dir?)")


def build_processor(tokenizer_file: Path, vocab: list[str] | None, n_mels: int, work_dir: Path) -> Any:
    """A ``WhisperProcessor`` whose tokenizer covers exactly ``vocab`` (the model's rows).

    The faster-whisper ``tokenizer.json`` of ``.en`` models stops at ``<|notimestamps|>``
    while the model has 1501 more rows (timestamp tokens ``<|0.00|>``..``<|30.00|>``); they
    are appended as non-special added tokens so ids, ``len(tokenizer)`` and the model agree.
    ``work_dir`` receives the completed ``tokenizer.json``.
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    try:
        tj = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
        model_vocab: dict[str, int] = tj["model"]["vocab"]
        added: list[dict[str, Any]] = tj["added_tokens"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Ct2FormatError(f"{tokenizer_file}: not a Hugging Face tokenizer.json ({exc})") from None
    next_id = max(itertools.chain(model_vocab.values(), (a["id"] for a in added))) + 1
    if vocab is not None:
        if len(vocab) < next_id:
            raise Ct2FormatError(
                f"{tokenizer_file}: tokenizer has {next_id} tokens but the model vocabulary only {len(vocab)}"
            )
        for i in range(next_id, len(vocab)):
            if not _TIMESTAMP.match(vocab[i]):
                raise Ct2FormatError(
                    f"{tokenizer_file}: model token #{i} '{vocab[i]}' is missing from the tokenizer "
                    "(only timestamp tokens can be added)"
                )
            added.append(
                {
                    "id": i,
                    "content": vocab[i],
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": False,
                }
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    out_file = work_dir / "tokenizer.json"
    out_file.write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    specials = [a["content"] for a in sorted(added, key=lambda a: a["id"]) if a.get("special")]
    eot = "<|endoftext|>"
    tok = WhisperTokenizer(
        tokenizer_file=str(out_file),
        unk_token=eot,
        bos_token=eot,
        eos_token=eot,
        pad_token=eot,
        extra_special_tokens=specials,
    )
    present = tok.get_vocab()
    missing = [t for t in (eot, "<|startoftranscript|>", "<|notimestamps|>") if t not in present]
    if missing:
        raise Ct2FormatError(
            f"{tokenizer_file}: special tokens {missing} are missing (not a Whisper tokenizer?)"
        )
    if tok.all_special_ids[-1] != tok.convert_tokens_to_ids("<|notimestamps|>"):
        raise Ct2FormatError(f"{tokenizer_file}: <|notimestamps|> must be the last special token")
    if vocab is not None:
        bad = [(i, t) for i, t in enumerate(vocab) if present.get(t) != i]
        if bad or len(tok) != len(vocab):
            raise Ct2FormatError(
                f"{tokenizer_file}: tokenizer ({len(tok)} tokens) does not match the model vocabulary "
                f"({len(vocab)}); first mismatches (id, token): {bad[:5]}"
            )
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    return WhisperProcessor(feature_extractor=fe, tokenizer=tok)


def _ids(tok: Any, tokens: list[str]) -> dict[str, int]:
    out = {}
    for t in tokens:
        i = tok.convert_tokens_to_ids(t)
        if i is not None and i != tok.unk_token_id:
            out[t] = int(i)
    return out


def build_generation_config(
    tok: Any,
    cfg: dict[str, Any],
    ct2_config: dict[str, Any] | None,
    warn: Callable[[str], None] = log.warning,
) -> tuple[Any, dict[str, Any]]:
    """Generation config + extra model-config fields, as OpenAI's hub checkpoints carry them."""
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ct2_config = ct2_config or {}
    eot = int(tok.convert_tokens_to_ids("<|endoftext|>"))
    sot = int(tok.convert_tokens_to_ids("<|startoftranscript|>"))
    multilingual = int(cfg["vocab_size"]) >= 51865
    suppress = ct2_config.get("suppress_ids")
    if suppress is None:
        warn("no suppress_ids in the CTranslate2 config.json: generation will not suppress symbol tokens")
        suppress = []
    begin = ct2_config.get("suppress_ids_begin") or [220, eot]
    heads = ct2_config.get("alignment_heads")
    if not heads:
        n, h = int(cfg["decoder_layers"]), int(cfg["decoder_attention_heads"])
        heads = [[li, hi] for li in range(n // 2, n) for hi in range(h)]
        warn(
            "no alignment_heads in the CTranslate2 config.json: using all heads of the last half of decoder layers"
        )
    fields: dict[str, Any] = dict(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=int(cfg["max_target_positions"]),
        suppress_tokens=[int(x) for x in suppress],
        begin_suppress_tokens=[int(x) for x in begin],
        alignment_heads=[[int(a), int(b)] for a, b in heads],
        no_timestamps_token_id=int(tok.convert_tokens_to_ids("<|notimestamps|>")),
        prev_sot_token_id=int(tok.convert_tokens_to_ids("<|startofprev|>")),
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if multilingual:
        fields["lang_to_id"] = _ids(tok, [f"<|{code}|>" for code in LANGUAGES])
        fields["task_to_id"] = {
            t: int(tok.convert_tokens_to_ids(f"<|{t}|>")) for t in ("transcribe", "translate")
        }
    gc = GenerationConfig(**fields)
    extra = {
        "decoder_start_token_id": sot,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
    }
    return gc, extra
