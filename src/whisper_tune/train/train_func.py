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

import json
import logging
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

__all__ = ["METRICS_FILE", "WorkerInfo", "load_data", "resolve_precision", "run_worker", "train_func"]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
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
                feature_cache=feature_cache,
                num_workers=d.num_workers,
                load_kwargs=load_kwargs or None,
            )
        )
    return out[0], out[1]


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
    """Seq2SeqTrainer that can generate from cached encoder outputs during evaluation."""

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):  # type: ignore[no-untyped-def,override]
        enc = inputs.get("encoder_outputs")
        if enc is not None and not isinstance(enc, BaseModelOutput):
            inputs = {**inputs, "encoder_outputs": BaseModelOutput(last_hidden_state=enc[0])}
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
    model, _info = apply_strategy(model, job.train)

    collator: Any = _deps.WhisperCollator(processor, start_id)
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
    if use_gpu:
        # The perf helper's fast path: fused AdamW, pinned memory, prefetching loaders.
        from whisper_tune.train import fastpath

        plan = fastpath.plan_fast_path(
            device,
            precision,
            compile=False,
            gradient_checkpointing=t.gradient_checkpointing,
            num_workers=t.dataloader_num_workers or None,
        )
        extra_args = fastpath.training_args_overrides(plan)
        for key in ("bf16", "fp16", "activation_checkpointing", "gradient_checkpointing", "torch_compile"):
            extra_args.pop(key, None)
        log.info("GPU fast path: %s", plan.to_dict())
    else:
        extra_args["dataloader_num_workers"] = t.dataloader_num_workers
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
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
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
