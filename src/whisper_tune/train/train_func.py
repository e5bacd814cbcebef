"""The per-worker training function: HF ``Seq2SeqTrainer`` on Whisper, inside Ray or not.

Why: Ray Train runs this once per worker; ``--no-ray`` runs the very same function in
the current process, so a failing run can be debugged with a plain ``pdb``. Everything
Ray-specific is behind ``use_ray``: ``prepare_trainer``, a ``RayTrainReportCallback``
that attaches the checkpoint's metrics, and resuming from ``ray.train.get_checkpoint()``
(Train V2 does not resume by itself: without passing the checkpoint to
``trainer.train(resume_from_checkpoint=...)`` a restored run silently starts at step 0).

Checkpoint rules: evaluation always precedes a save (``save_steps`` is a multiple of
``eval_steps``, validated in the config) and the last step is always evaluated and saved,
so every checkpoint carries the ``eval_wer`` of its own weights. Without Ray the same
layout (``<run>/checkpoint_<step>/checkpoint`` + ``metrics.json``) is written directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback
from transformers.modeling_outputs import BaseModelOutput

from whisper_tune.train import _deps
from whisper_tune.train.config import JobConfig
from whisper_tune.train.deepspeed import load_deepspeed_config
from whisper_tune.train.encoder_cache import (
    CachedEncoderCollator,
    CachedEncoderDataset,
    build_encoder_cache,
    cache_fingerprint,
)
from whisper_tune.train.strategies import apply_strategy

__all__ = [
    "FAST_PATH_FILE",
    "METRICS_FILE",
    "WorkerInfo",
    "context_frames",
    "item_lengths",
    "load_data",
    "resolve_precision",
    "run_worker",
    "train_func",
]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
_ARG_NAMES = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
FAST_PATH_FILE = "fast_path.json"  # what the fast path chose (run dir; written by rank 0)
HF_CHECKPOINT = "checkpoint"  # sub-folder name used by RayTrainReportCallback


@dataclass
class WorkerInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1


def resolve_precision(precision: str, device: str) -> str:
    """Precision "auto" -> bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU."""
    try:
        from whisper_tune.train.fastpath import resolve_precision as fast

        return str(fast(precision, device))
    except ImportError:
        pass
    if precision != "auto":
        return precision
    if device.startswith("cuda") and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _worker_info(use_ray: bool) -> WorkerInfo:
    if use_ray:
        import ray.train

        ctx = ray.train.get_context()
        return WorkerInfo(
            ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_world_size(), ctx.get_local_world_size()
        )
    return WorkerInfo()


def _set_threads(job: JobConfig, info: WorkerInfo, use_gpu: bool) -> int:
    """CPU workers share the node's cores; oversubscription makes every worker slower."""
    if job.train.torch_threads:
        n = job.train.torch_threads
    elif use_gpu:
        n = max(1, int(job.scaling.cpus_per_worker or 1))
    else:
        n = max(1, (os.cpu_count() or 1) // max(1, info.local_world_size))
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def load_data(job: JobConfig, processor: Any, feature_cache: str | None) -> tuple[Any, Any]:
    """PreparedData for the train and eval manifests (raises DataError with the report)."""
    d = job.data
    load_kwargs: dict[str, Any] = {}
    if d.text_column:
        load_kwargs["text_column"] = d.text_column
    if d.audio_column:
        load_kwargs["audio_column"] = d.audio_column
    if d.root:
        load_kwargs["root"] = d.root
    out = []
    for path in (d.train, d.eval):
        out.append(
            _deps.prepare_dataset(
                path,
                processor,
                max_label_tokens=d.max_label_tokens,
                long_audio=d.long_audio,
                max_duration_s=job.train.max_clip_seconds(),
                feature_cache=feature_cache,
                num_workers=d.num_workers,
                load_kwargs=load_kwargs or None,
            )
        )
    return out[0], out[1]


def context_frames(job: JobConfig, train_data: Any, eval_data: Any) -> int:
    """Mel frames of the encoder context for this job (3000 = Whisper's 30 s window).

    ``train.encoder_frames`` as given; with ``train.short_audio`` the longest usable clip of
    the train and eval data plus ``train.encoder_margin_frames`` (rounded up to 16 frames).
    Deterministic, so the launcher and every worker agree without talking to each other.
    """
    from whisper_tune.train.fastpath import FULL_FRAMES, choose_encoder_frames

    t = job.train
    if t.encoder_frames is not None:
        return int(t.encoder_frames)
    if not t.short_audio:
        return FULL_FRAMES
    durations = [float(x) for x in (*train_data.durations, *eval_data.durations) if x is not None]
    if not durations:  # older PreparedData without durations: fall back to the frame counts
        durations = [f / 100.0 for f in (*item_lengths(train_data.dataset), *item_lengths(eval_data.dataset))]
    return choose_encoder_frames(max(durations), t.encoder_margin_frames)


def item_lengths(ds: Any) -> list[float]:
    """Frames of real audio per item (``WhisperDataset.lengths``), through ``Subset`` too."""
    base, index = (ds.dataset, list(ds.indices)) if isinstance(ds, torch.utils.data.Subset) else (ds, None)
    lengths = getattr(base, "lengths", None)
    if lengths is None:
        raise TypeError(f"{type(base).__name__} has no lengths; cannot group batches by length")
    lengths = list(lengths)
    return [float(x) for x in (lengths if index is None else [lengths[i] for i in index])]


def _item_ids(ds: Any) -> list[str]:
    """Item ids in order, without loading features when the dataset exposes its entries."""
    base, index = (ds.dataset, list(ds.indices)) if isinstance(ds, torch.utils.data.Subset) else (ds, None)
    entries = getattr(base, "entries", None)
    if entries is not None:
        picked = entries if index is None else [entries[i] for i in index]
        return [str(e.id) for e in picked]
    return [str(ds[i].get("id", i)) for i in range(len(ds))]


def _limit(dataset: Any, n: int | None) -> Any:
    if n is None or n >= len(dataset):
        return dataset
    return torch.utils.data.Subset(dataset, range(n))


class _WhisperTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that can generate from cached encoder outputs during evaluation, groups
    batches by audio length (``length_sampler``) and generates eagerly from a compiled model."""

    length_sampler: Any = None  # a LengthBucketSampler, or None for the Trainer's shuffling

    def _get_train_sampler(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        if self.length_sampler is not None:
            return self.length_sampler
        return super()._get_train_sampler(*args, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):  # type: ignore[no-untyped-def,override]
        enc = inputs.get("encoder_outputs")
        if enc is not None and not isinstance(enc, BaseModelOutput):
            inputs = {**inputs, "encoder_outputs": BaseModelOutput(last_hidden_state=enc[0])}
        from whisper_tune.train.fastpath import uncompiled

        # generate() calls the model once per token with a growing cache: a training-compiled
        # graph would recompile for each length. Run it eagerly (the graphs are kept).
        with uncompiled(self.model):
            return super().prediction_step(
                model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs
            )


class _FinalEvalSave(TrainerCallback):
    """Evaluate and save at the last step, so the final weights get a checkpoint with a score."""

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control


class _Throughput(TrainerCallback):
    """Training speed without evaluation/saving: samples/s over the steps after ``warmup``.

    ``step_samples_per_s``: from the summed step times (CUDA synchronised at each step end;
    the batch fetch before a step is excluded); ``wall_samples_per_s``: the same plus the
    gaps between steps (data loading, logging), except gaps holding an evaluation or a
    checkpoint save. Written into the run's ``fast_path.json`` so runs can be compared.
    """

    def __init__(self, global_batch: int, path: Path | None, warmup: int = 2) -> None:
        self.global_batch = global_batch
        self.path = path
        self.warmup = warmup
        self.step_time = 0.0
        self.wall = 0.0
        self.steps = 0
        self._begin = 0.0
        self._last_end: float | None = None
        self._paused = False

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        import time

        self._begin = time.perf_counter()
        if self._last_end is not None and not self._paused:
            self.wall += self._begin - self._last_end
        self._paused = False

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        import time

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if state.global_step > self.warmup:
            self.step_time += now - self._begin
            self.wall += now - self._begin
            self.steps += 1
        self._last_end = now if state.global_step >= self.warmup else None

    def on_evaluate(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._paused = True

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._paused = True

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.path is None or self.steps == 0:
            return
        data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        data["throughput"] = {
            "measured_steps": self.steps,
            "global_batch": self.global_batch,
            "step_samples_per_s": round(self.steps * self.global_batch / max(self.step_time, 1e-9), 2),
            "wall_samples_per_s": round(self.steps * self.global_batch / max(self.wall, 1e-9), 2),
        }
        self.path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _collect_metrics(state: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for entry in state.log_history:
        metrics.update(entry)
    metrics["step"] = state.global_step
    metrics["epoch"] = state.epoch
    return metrics


def _copy_last_checkpoint(args: Any, state: Any, target: Path) -> bool:
    from transformers.trainer_utils import get_last_checkpoint

    src = get_last_checkpoint(args.output_dir)
    if src is None:
        return False
    shutil.copytree(src, target / HF_CHECKPOINT)
    (target / METRICS_FILE).write_text(json.dumps(_collect_metrics(state), indent=2, default=str))
    return True


def _make_ray_callback(info: WorkerInfo) -> TrainerCallback:
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback

    class _RayReport(RayTrainReportCallback):
        """RayTrainReportCallback that names checkpoints by step and stores metrics.json in them.

        Only local rank 0 attaches the files (one copy per node; DeepSpeed shards of all
        local ranks are in the shared output dir by then); every rank reports, as Train V2
        requires.
        """

        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            metrics = _collect_metrics(state)
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = None
                if info.local_rank == 0 and _copy_last_checkpoint(args, state, Path(tmp)):
                    ckpt = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(
                    metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float, str))},
                    checkpoint=ckpt,
                    checkpoint_dir_name=f"checkpoint_{state.global_step:06d}",
                )

    return _RayReport()


class _LocalCheckpoints(TrainerCallback):
    """Without Ray: the same checkpoint layout, keeping the ``num_to_keep`` best by eval_wer (+ latest)."""

    def __init__(self, run_dir: Path, num_to_keep: int) -> None:
        self.run_dir = run_dir
        self.num_to_keep = num_to_keep

    def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        target = self.run_dir / f"checkpoint_{state.global_step:06d}"
        if target.exists():
            shutil.rmtree(target)
        tmp = self.run_dir / f".tmp_{target.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if _copy_last_checkpoint(args, state, tmp):
            tmp.rename(target)
        self._prune(target)

    def _prune(self, latest: Path) -> None:
        from whisper_tune.runs import list_checkpoints

        ckpts = list_checkpoints(self.run_dir)
        keep = {c.path for c in sorted(ckpts, key=lambda c: c.sort_key())[: self.num_to_keep]} | {latest}
        for c in ckpts:
            if c.path not in keep:
                shutil.rmtree(c.path, ignore_errors=True)


def _local_resume_point(run_dir: Path) -> str | None:
    from whisper_tune.runs import list_checkpoints

    ckpts = list_checkpoints(run_dir)
    if not ckpts:
        return None
    return str(max(ckpts, key=lambda c: c.step).path / HF_CHECKPOINT)


def _tensorboard_callback(run_dir: Path) -> TrainerCallback | None:
    if "://" in str(run_dir):
        return None  # remote storage: HF's default callback would write under the worker's output dir
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / "tensorboard")))


def _expected_steps(job: JobConfig, n_train: int, world_size: int) -> int:
    """Optimizer steps this run will take (decides whether torch.compile pays)."""
    t = job.train
    if t.max_steps > 0:
        return t.max_steps
    per_step = t.per_device_batch_size * t.gradient_accumulation_steps * max(1, world_size)
    return max(1, math.ceil(t.num_epochs * math.ceil(n_train / per_step)))


def train_func(config: dict[str, Any]) -> None:
    """Ray Train entry point: train one worker's share (see :func:`run_worker`)."""
    run_worker(config)


def run_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Train one worker's share; returns ``{"global_step", "world_size"}``.

    ``config``: ``{"job": JobConfig dict, "run_dir", "hf_output_dir", "use_ray", "use_gpu"}``
    (built by :func:`whisper_tune.train.launch.launch`).
    """
    job = JobConfig.from_mapping(config["job"])
    use_ray = bool(config.get("use_ray", True))
    run_dir = Path(config["run_dir"])
    info = _worker_info(use_ray)
    use_gpu = bool(config.get("use_gpu", False)) and torch.cuda.is_available()
    threads = _set_threads(job, info, use_gpu)
    device = f"cuda:{info.local_rank}" if use_gpu else "cpu"
    precision = resolve_precision(job.train.precision, device)
    log.info("worker %d/%d: %s, %s, %d threads", info.rank, info.world_size, device, precision, threads)
    torch.manual_seed(job.train.seed)

    model, processor = _deps.load_model(job.model.name, attn_implementation=job.model.attn_implementation)
    if job.model.language:
        processor.tokenizer.set_prefix_tokens(language=job.model.language, task=job.model.task)
        model.generation_config.language = job.model.language
        model.generation_config.task = job.model.task
    start_id = int(model.config.decoder_start_token_id)
    feature_cache = job.data.feature_cache or str(run_dir / "features")
    train_data, eval_data = load_data(job, processor, feature_cache)
    train_ds = _limit(train_data.dataset, job.data.max_train_samples)
    eval_ds = _limit(eval_data.dataset, job.data.max_eval_samples)
    from whisper_tune.train import fastpath

    n_frames = context_frames(job, train_data, eval_data)
    # Audio lengths for length-grouped batches, read before any wrapping (encoder cache).
    lengths = item_lengths(train_ds) if job.train.group_by_length else None
    if n_frames != fastpath.encoder_frames(model):
        # Before the strategy (LoRA wraps the model); the table rows kept are Whisper's own.
        fastpath.shorten_encoder_context(model, n_frames)
        log.info("encoder context: %d mel frames (%.2f s)", n_frames, n_frames / 100)
    model, _info = apply_strategy(model, job.train)

    collator: Any = _deps.WhisperCollator(processor, start_id, n_frames=n_frames)
    if job.train.cache_encoder_outputs:
        cache_root = Path(job.train.encoder_cache_dir or run_dir / "encoder_cache")
        model.to(device)
        for name, ds in (("train", train_ds), ("eval", eval_ds)):
            ids = _item_ids(ds)
            fp = cache_fingerprint(job.model.name, ids, extra=name)
            build_encoder_cache(
                model,
                ds,
                cache_root / name,
                fp,
                rank=info.rank,
                world_size=info.world_size,
                device=device,
                batch_size=job.train.eval_batch_size or job.train.per_device_batch_size,
            )
        train_ds = CachedEncoderDataset(train_ds, cache_root / "train")
        eval_ds = CachedEncoderDataset(eval_ds, cache_root / "eval")
        collator = CachedEncoderCollator(collator, start_id)

    ds_config = load_deepspeed_config(job.train.deepspeed)
    t = job.train
    extra_args: dict[str, Any] = {}
    plan_info: dict[str, Any] = {"device": device, "precision": precision, "n_frames": n_frames}
    if use_gpu:
        # The fast path: attention kernel, fused AdamW, compile, pinned memory, prefetching loaders.
        plan = fastpath.plan_fast_path(
            device,
            precision,
            n_frames=n_frames,
            compile=t.compile,
            gradient_checkpointing=t.gradient_checkpointing,
            num_workers=t.dataloader_num_workers or None,
            expected_steps=_expected_steps(job, len(train_ds), info.world_size),
        )
        if job.model.attn_implementation == "eager":  # an explicit user choice wins
            plan.attn_implementation = "eager"
        fastpath.apply_fast_path(model, plan)
        extra_args = fastpath.training_args_overrides(plan)
        for key in ("bf16", "fp16", "activation_checkpointing", "gradient_checkpointing", "torch_compile"):
            extra_args.pop(key, None)
        plan_info = plan.to_dict()
        log.info("GPU fast path: %s", plan_info)
    else:
        extra_args["dataloader_num_workers"] = t.dataloader_num_workers
        scope = {True: "model", False: "none", "auto": "none"}.get(t.compile, t.compile)  # type: ignore[call-overload]
        if scope == "model":
            fastpath.compile_model(model)
        elif scope == "encoder":
            fastpath.compile_encoder(model)
        if scope != "none":
            model.config.use_cache = False  # per-layer cache state would make dynamo recompile
            extra_args["dataloader_drop_last"] = True
        plan_info["compile_scope"] = scope
    plan_info["group_by_length"] = t.group_by_length
    if info.rank == 0 and "://" not in str(run_dir):
        (run_dir / FAST_PATH_FILE).write_text(json.dumps(plan_info, indent=2, default=str), encoding="utf-8")
    # transformers >= 5.2x renamed gradient_checkpointing (the GPU machine's older one lacks the new name).
    ckpt_key = (
        "activation_checkpointing" if "activation_checkpointing" in _ARG_NAMES else "gradient_checkpointing"
    )
    extra_args[ckpt_key] = t.gradient_checkpointing
    extra_args[f"{ckpt_key}_kwargs"] = {"use_reentrant": False} if t.gradient_checkpointing else None
    args = Seq2SeqTrainingArguments(
        output_dir=str(config["hf_output_dir"]),
        per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.eval_batch_size or t.per_device_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        max_grad_norm=t.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not use_gpu,
        deepspeed=ds_config,
        eval_strategy="steps",
        eval_steps=t.eval_steps,
        eval_on_start=t.eval_on_start,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        predict_with_generate=True,
        generation_max_length=t.generation_max_length,
        generation_num_beams=t.generation_num_beams,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=t.seed,
        ddp_find_unused_parameters=False,
        log_level="warning",
        disable_tqdm=info.rank != 0,
        **extra_args,
    )
    callbacks: list[TrainerCallback] = [_FinalEvalSave()]
    plan_path = run_dir / FAST_PATH_FILE if info.rank == 0 and "://" not in str(run_dir) else None
    global_batch = t.per_device_batch_size * t.gradient_accumulation_steps * info.world_size
    callbacks.append(_Throughput(global_batch, plan_path))
    if info.rank == 0:
        tb = _tensorboard_callback(run_dir)
        if tb is not None:
            callbacks.append(tb)
    callbacks.append(_make_ray_callback(info) if use_ray else _LocalCheckpoints(run_dir, job.run.num_to_keep))
    trainer = _WhisperTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=_deps.make_compute_metrics(processor, job.eval.normalizer),
        processing_class=processor,
        callbacks=callbacks,
    )
    if lengths is not None:
        trainer.length_sampler = fastpath.LengthBucketSampler(lengths, t.per_device_batch_size, seed=t.seed)
    if use_ray:
        import ray.train
        from ray.train.huggingface.transformers import prepare_trainer

        trainer = prepare_trainer(trainer)  # type: ignore[assignment]
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                resume = str(Path(ckpt_dir) / HF_CHECKPOINT)
                log.info("resuming from %s", resume)
                trainer.train(resume_from_checkpoint=resume)
        else:
            trainer.train()
    else:
        resume_local = _local_resume_point(run_dir)
        if resume_local:
            log.info("resuming from %s", resume_local)
        trainer.train(resume_from_checkpoint=resume_local)

    result = {"global_step": int(trainer.state.global_step), "world_size": info.world_size}
    if info.rank == 0:
        shutil.rmtree(config["hf_output_dir"], ignore_errors=True)
    return result
