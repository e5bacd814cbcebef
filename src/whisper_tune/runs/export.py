"""Export a run's best checkpoint as a self-contained model: ``RUN/best`` (+ ``best/ct2``).

Why: a checkpoint is a training artefact (optimizer state, maybe LoRA adapters, maybe a shortened
encoder context, maybe bf16); ``best/`` is what evaluation and serving load: one plain float32
``WhisperForConditionalGeneration`` dir with its processor, the run's config and the metrics of
the checkpoint it came from. Remote runs are exported the same way after downloading only the
chosen checkpoint (:func:`export_best_remote`).

The base model of a LoRA run is named by the run's ``config.yaml`` (``model.name``, read as plain
YAML, so exporting needs nothing from the training package) or by the ``base_model`` argument,
and loaded with ``whisper_tune.models.load_model``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from whisper_tune import storage
from whisper_tune.config import ConfigError, load_yaml
from whisper_tune.errors import UserError
from whisper_tune.paths import cache_root
from whisper_tune.runs.layout import Checkpoint, RunDir
from whisper_tune.runs.model_card import write_model_card

__all__ = [
    "FULL_POSITIONS",
    "SHORT_DIR",
    "RemoteBest",
    "export_best",
    "export_best_remote",
    "restore_full_context",
]

log = logging.getLogger(__name__)


def base_model_of(run: RunDir) -> str | None:
    """``model.name`` of the run's config.yaml (the model it was fine-tuned from), or None."""
    cfg = run.join(RunDir.CONFIG_FILE)
    if not isinstance(cfg, Path) or not cfg.is_file():
        return None
    model = load_yaml(cfg).get("model")
    name = model.get("name") if isinstance(model, dict) else None
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ConfigError(f"{cfg}: model.name: expected a model name, got {name!r}")
    return name


def _load_checkpoint_model(hf_ckpt: Path, base_model: str | None) -> Any:
    """The checkpoint's weights as a plain WhisperForConditionalGeneration (LoRA merged)."""
    from transformers import WhisperForConditionalGeneration

    if (hf_ckpt / "adapter_config.json").is_file():
        from peft import PeftModel

        from whisper_tune.models import load_model

        if base_model is None:
            raise UserError(
                f"{hf_ckpt}: LoRA checkpoint but the run has no config.yaml naming the base model"
            )
        base, _ = load_model(base_model)
        return PeftModel.from_pretrained(base, str(hf_ckpt)).merge_and_unload()
    return WhisperForConditionalGeneration.from_pretrained(str(hf_ckpt))


def _load_processor(hf_ckpt: Path, base_model: str | None) -> Any:
    from transformers import WhisperProcessor

    try:
        return WhisperProcessor.from_pretrained(str(hf_ckpt))
    except (OSError, ValueError, TypeError):
        if base_model is None:
            raise
        from whisper_tune.models import ensure_hf_dir

        return WhisperProcessor.from_pretrained(ensure_hf_dir(base_model))


FULL_POSITIONS = 1500  # Whisper's encoder positions for 30 s (3000 mel frames)
SHORT_DIR = "short"  # best/short: the model at its shortened training context (optional)


def restore_full_context(model: Any) -> int | None:
    """Give a short-context Whisper (``fastpath.shorten_encoder_context``) its full 30 s table back.

    Whisper's encoder position table is fixed sinusoids (HF creates it with
    ``requires_grad_(False)``, so fine-tuning never changes it): the rows the short model kept
    are its own, the rest are recomputed with transformers' ``sinusoids``. Afterwards
    ``config.max_source_positions`` is 1500 again, so plain ``from_pretrained`` +
    ``WhisperProcessor`` (padding to 30 s) + ``generate()`` pipelines accept the model.
    Returns the mel frames the model had (its training context), or None when already full.
    """
    import torch
    from transformers.models.whisper.modeling_whisper import sinusoids

    positions = int(model.config.max_source_positions)
    if positions >= FULL_POSITIONS:
        return None
    encoder = model.get_encoder()
    old = encoder.embed_positions
    full = sinusoids(FULL_POSITIONS, old.embedding_dim).to(device=old.weight.device, dtype=old.weight.dtype)
    own = old.weight.detach()
    drift = float((own - full[:positions]).abs().max()) if positions else 0.0
    if drift > 1e-2:
        log.warning(
            "encoder position table differs from Whisper's sinusoids by up to %.3g (trained?); "
            "its %d rows are kept, rows %d.. are sinusoids",
            drift,
            positions,
            positions,
        )
    full[:positions] = own
    new = torch.nn.Embedding(
        FULL_POSITIONS, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(full)
    new.weight.requires_grad_(False)
    encoder.embed_positions = new
    encoder.max_source_positions = FULL_POSITIONS
    model.config.max_source_positions = FULL_POSITIONS
    if getattr(encoder, "config", None) is not None:
        encoder.config.max_source_positions = FULL_POSITIONS
    decoder = model.get_decoder()
    if hasattr(decoder, "max_source_positions"):
        decoder.max_source_positions = FULL_POSITIONS
    return 2 * positions


def _training_frames(run: RunDir) -> int | None:
    """Encoder context the run trained at, from its fast_path.json (written by the workers)."""
    value = run.read_json(RunDir.FAST_PATH_FILE).get("n_frames")
    return int(value) if isinstance(value, int) else None


def export_best(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    ct2: bool = False,
    quantization: str | None = None,
    short: bool = False,
    base_model: str | None = None,
) -> Path:
    """Write ``run_dir/best``: the best (or given) checkpoint as a self-contained HF dir.

    Holds the model (LoRA adapters merged onto ``base_model``, default: the run config's
    ``model.name``), processor, generation config, the run's config (``whisper_tune_config.yaml``),
    the checkpoint's ``metrics.json`` and a model card (``README.md``, ``runs.model_card``); with
    ``ct2`` also ``best/ct2`` via ``whisper_tune.models.export_ct2``. Replaces an older ``best/`` atomically. A model trained
    at a shortened encoder context is exported with the full 30 s context
    (:func:`restore_full_context`) so any Whisper pipeline loads it; ``metrics.json`` records
    ``train_encoder_frames``, and ``short`` also writes the short-context model to
    ``best/short/`` (its features must be cut to that many frames). Half-precision checkpoints
    (DeepSpeed bf16) are saved as float32. A run in remote storage: :func:`export_best_remote`.
    """
    run = RunDir(run_dir)
    if not isinstance(run.path, Path):
        raise UserError(
            f"run {run.path}: remote; export it with export_best_remote (`whisper-tune best URI`)"
        )
    root = run.path
    chosen = Checkpoint.load(checkpoint) if checkpoint is not None else run.best_checkpoint()
    hf_ckpt = Path(chosen.hf_dir)
    if not hf_ckpt.is_dir():
        raise UserError(f"{chosen.path}: no HF checkpoint inside (expected {hf_ckpt})")
    base = base_model or base_model_of(run)
    model = _load_checkpoint_model(hf_ckpt, base)
    processor = _load_processor(hf_ckpt, base)
    model.config.use_cache = True
    trained_dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    if trained_dtype != "float32":
        # bf16/fp16 DeepSpeed checkpoints would load as bf16 and then reject the float32
        # features every WhisperProcessor returns; Whisper checkpoints are float32 on disk.
        import torch

        model = model.to(torch.float32)
    tmp = root / f".{RunDir.BEST_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if short and int(model.config.max_source_positions) < FULL_POSITIONS:
        model.save_pretrained(tmp / SHORT_DIR)
        processor.save_pretrained(tmp / SHORT_DIR)
    short_frames = restore_full_context(model)
    train_frames = short_frames or _training_frames(run) or 2 * FULL_POSITIONS
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if (root / RunDir.CONFIG_FILE).is_file():
        shutil.copy2(root / RunDir.CONFIG_FILE, tmp / "whisper_tune_config.yaml")
    info = dict(chosen.metrics)
    info["source_checkpoint"] = str(chosen.path)
    info["train_encoder_frames"] = train_frames  # the context it was fine-tuned at (3000 = 30 s)
    info["export_encoder_frames"] = 2 * FULL_POSITIONS
    info["trained_dtype"] = trained_dtype  # weights are saved as float32 either way
    (tmp / RunDir.METRICS_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    write_model_card(tmp, root)  # README.md: base model, data, metrics, guard (runs.model_card)
    best = root / RunDir.BEST_DIR
    if best.exists():
        shutil.rmtree(best)
    tmp.rename(best)
    log.info("best checkpoint %s (eval_wer %s) exported to %s", chosen.name, chosen.eval_wer, best)
    if ct2:
        from whisper_tune.models import export_ct2

        export_ct2(str(best), str(best / "ct2"), quantization=quantization)
        write_model_card(best, root)  # the card's usage section names ct2/
    return best


@dataclass
class RemoteBest:
    """What :func:`export_best_remote` did: the local ``best/``, where it was pushed, its source."""

    local: Path
    remote: str
    checkpoint: str


def export_best_remote(
    run_uri: str,
    *,
    checkpoint: str | None = None,
    ct2: bool = False,
    quantization: str | None = None,
    work_dir: str | Path | None = None,
    base_model: str | None = None,
) -> RemoteBest:
    """``whisper-tune best`` for a run in remote storage.

    Downloads the run's top-level files and only the chosen checkpoint (best eval_wer, or
    ``checkpoint``: a URI or a checkpoint name in the run) into a local work dir, exports
    ``best/`` there with :func:`export_best`, replaces ``RUN_URI/best`` with it and deletes the
    downloaded checkpoint. A best candidate whose download fails the byte-wise completeness check
    is skipped for the next best.
    """
    remote = RunDir(run_uri)
    if not isinstance(remote.path, str) or not remote.exists():
        raise UserError(f"run {run_uri}: no such directory")
    uri = remote.path
    key = hashlib.sha256(storage.resolve(uri).uri.encode()).hexdigest()[:16]
    local = Path(work_dir) if work_dir is not None else cache_root() / "remote-runs" / f"{remote.name}-{key}"
    local.mkdir(parents=True, exist_ok=True)
    for old in local.glob(f"{RunDir.CHECKPOINT_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)
    for name in sorted(remote.names()):
        src = storage.join(uri, name)
        if not storage.is_dir(src):
            (local / name).write_bytes(storage.read_bytes(src))
    if checkpoint is not None:
        ckpt_uri = (
            checkpoint if storage.is_uri(checkpoint) else storage.join(uri, PurePosixPath(checkpoint).name)
        )
        if not storage.is_dir(ckpt_uri):
            raise UserError(f"checkpoint {ckpt_uri}: no such directory")
        candidates = [Checkpoint.load(ckpt_uri)]
    else:
        candidates = sorted(remote.checkpoints(), key=lambda c: c.sort_key())  # best_of's order
        if not candidates:
            raise UserError(f"run {uri}: has no complete checkpoints yet")
    for cand in candidates:
        local_ckpt = local / cand.name
        storage.download_dir(cand.path, local_ckpt)
        if checkpoint is not None or any(c.path == local_ckpt for c in RunDir(local).checkpoints()):
            break
        log.warning("%s: downloaded copy is incomplete: trying the next best checkpoint", cand.path)
        shutil.rmtree(local_ckpt, ignore_errors=True)
    else:
        raise UserError(f"run {uri}: no checkpoint downloaded complete")
    try:
        best = export_best(
            local, checkpoint=local_ckpt, ct2=ct2, quantization=quantization, base_model=base_model
        )
    finally:
        shutil.rmtree(local_ckpt, ignore_errors=True)
    info = storage.read_json(best / RunDir.METRICS_FILE)
    info["source_checkpoint"] = str(cand.path)
    (best / RunDir.METRICS_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    remote_best = storage.join(uri, RunDir.BEST_DIR)
    storage.remove(remote_best)
    storage.upload_dir(best, remote_best)
    log.info("best/ of %s pushed to %s", cand.path, remote_best)
    return RemoteBest(best, remote_best, str(cand.path))
