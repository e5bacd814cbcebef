"""One worker's fine-tuning run as a recipe of named steps, each a plain function.

Why: a training run is many decisions (threads, model, data, context, encoder cache, the
plan, the Trainer's arguments, callbacks, resume); written as one function they cannot be
tested or reused apart, and CPU and GPU runs drift apart. Every step takes and returns a small
typed state, :func:`run` calls them in order, one plan decides for CPU and GPU alike::

    setup_worker -> build_model -> load_datasets -> plan -> apply_plan
      -> trainer_arguments -> callbacks -> build_trainer -> resume -> fit

Checkpoint rules: evaluation always precedes a save (``save_steps`` is a multiple of
``eval_steps``, validated in the config) and the last step is always evaluated and saved, so
every checkpoint carries the ``eval_wer`` of its own weights. Ray Train V2 does not resume by
itself: a checkpoint not passed to ``trainer.train(resume_from_checkpoint=...)`` means a
silent restart at step 0, hence the explicit :func:`resume` step.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Seq2SeqTrainingArguments, TrainerCallback

from whisper_tune.train import _deps, fastpath, inputs, run_files, tensor_data
from whisper_tune.train.callbacks import (
    FinalEvalSave,
    LocalCheckpoints,
    Throughput,
    ray_report_callback,
    tensorboard_callback,
)
from whisper_tune.train.config import JobConfig
from whisper_tune.train.deepspeed import load_deepspeed_config
from whisper_tune.train.distill import ReferenceModel
from whisper_tune.train.encoder_cache import (
    CachedEncoderCollator,
    CachedEncoderDataset,
    build_encoder_cache,
    cache_fingerprint,
)
from whisper_tune.train.plan import batch_of
from whisper_tune.train.progress import ProgressFile
from whisper_tune.train.resolve import record_plan, resolve_job
from whisper_tune.train.sampler import LengthBucketSampler
from whisper_tune.train.strategies import apply_strategy
from whisper_tune.train.trainer import WhisperTrainer, training_arguments

__all__ = [
    "Datasets",
    "ModelState",
    "Prepared",
    "TrainPlan",
    "Worker",
    "WorkerConfig",
    "WorkerInfo",
    "apply_plan",
    "build_model",
    "build_trainer",
    "callbacks",
    "expected_steps",
    "fit",
    "load_datasets",
    "plan",
    "resume",
    "run",
    "setup_worker",
    "trainer_arguments",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- states


@dataclass
class WorkerConfig:
    """What the launcher hands every worker (``train_loop_config``)."""

    job: JobConfig
    run_dir: Path
    hf_output_dir: str  # the HF Trainer's own checkpoints (a temporary folder, removed at the end)
    use_ray: bool = True
    use_gpu: bool = False  # asked for; a worker without CUDA trains on CPU
    # started while the launcher still prepares the data: wait for its marker before reading it
    wait_for_data: bool = False

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> WorkerConfig:
        """``{"job": JobConfig dict, "run_dir", "hf_output_dir", "use_ray", "use_gpu", "wait_for_data"}``."""
        return cls(
            job=JobConfig.from_mapping(dict(config["job"])),
            run_dir=Path(config["run_dir"]),
            hf_output_dir=str(config["hf_output_dir"]),
            use_ray=bool(config.get("use_ray", True)),
            use_gpu=bool(config.get("use_gpu", False)),
            wait_for_data=bool(config.get("wait_for_data", False)),
        )


@dataclass
class WorkerInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1


@dataclass
class Worker:
    """Where this worker runs: its place in the group, device, precision, threads."""

    cfg: WorkerConfig
    info: WorkerInfo
    device: str  # "cpu" or "cuda:<local rank>"
    precision: str  # resolved: bf16 | fp16 | fp32
    threads: int

    @property
    def job(self) -> JobConfig:
        return self.cfg.job

    @property
    def use_gpu(self) -> bool:
        return self.device.startswith("cuda")


@dataclass
class ModelState:
    model: Any  # WhisperForConditionalGeneration (a peft model after apply_plan with LoRA)
    processor: Any
    decoder_start_id: int


@dataclass
class Datasets:
    """The prepared data and this job's share of it (``data.max_*_samples``)."""

    train_data: Any  # PreparedData (report, durations)
    eval_data: Any
    train: Any  # torch Dataset
    eval: Any
    lengths: list[float] | None  # audio frames per train item (train.group_by_length), else None
    guard_data: Any = None  # PreparedData of the real-speech guard (None: data.guard none)
    guard: Any = None


@dataclass
class TrainPlan:
    """Everything decided before training: context, fast path, encoder cache, batching."""

    n_frames: int
    fast_path: fastpath.FastPathPlan
    encoder_cache: Path | None  # where cached encoder outputs go (train.cache_encoder_outputs)
    group_by_length: bool
    in_memory: bool = False  # features as one tensor (train/tensor_data.py)
    gpu_plan: Any = None  # train/plan.py GpuPlan: every auto resolved, with reasons (plan.json)

    def to_dict(self) -> dict[str, Any]:
        """What ``fast_path.json`` records (the Throughput callback adds ``throughput``)."""
        return {**self.fast_path.to_dict(), "group_by_length": self.group_by_length}


@dataclass
class Prepared:
    """The model and data as they are trained: context cut, strategy, cache, plan applied."""

    model: Any
    train: Any
    eval: Any
    collator: Any
    lengths: list[float] | None
    guard: Any = None  # the guard dataset, scored with every evaluation
    reference: Any = None  # distill.ReferenceModel of the starting weights (train.kl_to_base > 0)


# --------------------------------------------------------------------------- steps


def _worker_info(use_ray: bool) -> WorkerInfo:
    if use_ray:
        import ray.train

        ctx = ray.train.get_context()
        return WorkerInfo(
            ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_world_size(), ctx.get_local_world_size()
        )
    return WorkerInfo()


def setup_worker(cfg: WorkerConfig, info: WorkerInfo | None = None) -> Worker:
    """Device, precision and intra-op threads for this worker; seeds torch.

    CPU workers share the node's cores (``train.torch_threads``, else cores / workers on the
    node): oversubscription makes every worker slower. GPU workers use their CPU share.
    """
    info = info or _worker_info(cfg.use_ray)
    job = cfg.job
    use_gpu = cfg.use_gpu and torch.cuda.is_available()
    if job.train.torch_threads:
        n = job.train.torch_threads
    elif use_gpu:
        n = max(1, int(job.scaling.cpus_per_worker or 1))
    else:
        n = max(1, (os.cpu_count() or 1) // max(1, info.local_world_size))
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    device = f"cuda:{info.local_rank}" if use_gpu else "cpu"
    precision = fastpath.resolve_precision(job.train.precision, device)
    log.info("worker %d/%d: %s, %s, %d threads", info.rank, info.world_size, device, precision, n)
    torch.manual_seed(job.train.seed)
    return Worker(cfg, info, device, precision, n)


def build_model(worker: Worker) -> ModelState:
    """The base model and processor, with the job's language/task as decoder prefix."""
    job = worker.job
    model, processor = _deps.load_model(job.model.name, attn_implementation=job.model.attn_implementation)
    if job.model.language:
        processor.tokenizer.set_prefix_tokens(language=job.model.language, task=job.model.task)
        model.generation_config.language = job.model.language
        model.generation_config.task = job.model.task
    return ModelState(model, processor, int(model.config.decoder_start_token_id))


def load_datasets(worker: Worker, model: ModelState) -> Datasets:
    """Train/eval data (feature cache in the run dir unless ``data.feature_cache``), limited."""
    job = worker.job
    feature_cache = job.data.feature_cache or str(worker.cfg.run_dir / run_files.FEATURES_DIR)
    train_data, eval_data = inputs.load_data(job, model.processor, feature_cache, num_workers=1)
    train = inputs.limit(train_data.dataset, job.data.max_train_samples)
    train = inputs.pack(job, train, model.processor.tokenizer)
    evaluation = inputs.limit(eval_data.dataset, job.data.max_eval_samples)
    # Audio lengths for length-grouped batches, read before any wrapping (encoder cache).
    lengths = inputs.item_lengths(train) if job.train.group_by_length else None
    guard_data = inputs.load_guard(job, model.processor, feature_cache)
    guard = guard_data.dataset if guard_data is not None else None
    return Datasets(train_data, eval_data, train, evaluation, lengths, guard_data, guard)


def expected_steps(job: JobConfig, n_train: int, world_size: int) -> int:
    """Optimizer steps this run will take (decides whether torch.compile pays)."""
    t = job.train
    if t.max_steps > 0:
        return t.max_steps
    per_step = batch_of(t) * t.gradient_accumulation_steps * max(1, world_size)
    return max(1, math.ceil(t.num_epochs * math.ceil(n_train / per_step)))


def plan(worker: Worker, data: Datasets, model: ModelState | None = None) -> TrainPlan:
    """Context, ZeRO, batch, fast path: with the model, ``train/plan.py`` resolves every ``auto``
    (``worker.cfg.job`` becomes the resolved copy); explicit settings (``eager`` too) win."""
    gpu_plan, in_memory = None, False
    if model is not None:
        i = worker.info
        found = resolve_job(worker.job, worker.device, i.world_size, i.local_world_size, model.model, data)
        worker.cfg.job, gpu_plan, in_memory, n_frames = found.job, found.plan, found.in_memory, found.n_frames
        worker.precision = fastpath.resolve_precision(found.job.train.precision, worker.device)
    else:
        n_frames = inputs.context_frames(worker.job, data.train_data, data.eval_data, data.guard_data)
    job, t = worker.job, worker.job.train
    fast = fastpath.plan_fast_path(
        worker.device,
        worker.precision,
        n_frames=n_frames,
        compile=gpu_plan.value("compile") if gpu_plan is not None else t.compile,
        gradient_checkpointing=t.gradient_checkpointing,
        num_workers=t.dataloader_num_workers or None,
        expected_steps=expected_steps(job, len(data.train), worker.info.world_size),
        attn_implementation="eager" if job.model.attn_implementation == "eager" else None,
    )
    if gpu_plan is not None and "optim" in gpu_plan.choices:
        fast.optim = gpu_plan.value("optim")
    cache = None
    if t.cache_encoder_outputs:
        cache = Path(t.encoder_cache_dir or worker.cfg.run_dir / run_files.ENCODER_CACHE_DIR)
    return TrainPlan(n_frames, fast, cache, t.group_by_length, in_memory, gpu_plan)


def apply_plan(worker: Worker, model: ModelState, data: Datasets, train_plan: TrainPlan) -> Prepared:
    """Carry the plan out; rank 0 records it in the run's ``fast_path.json``.

    Order matters: the context is cut before the strategy (LoRA wraps the model; the position
    rows kept are Whisper's own), the encoder cache is built before compiling, and the fast
    path (attention, checkpointing, compile) comes last.
    """
    m = model.model
    if train_plan.n_frames != fastpath.encoder_frames(m):
        fastpath.shorten_encoder_context(m, train_plan.n_frames)
        log.info("encoder context: %d mel frames (%.2f s)", train_plan.n_frames, train_plan.n_frames / 100)
    # the KL term's teacher: the starting weights, before a strategy wraps or freezes them
    reference = ReferenceModel(m) if worker.job.train.kl_to_base > 0 else None
    m, _strategy = apply_strategy(m, worker.job.train)
    collator: Any = _deps.WhisperCollator(
        model.processor, model.decoder_start_id, n_frames=train_plan.n_frames
    )
    train, evaluation, guard = data.train, data.eval, data.guard
    if train_plan.encoder_cache is not None:
        t = worker.job.train
        m.to(worker.device)
        sets = [("train", train), ("eval", evaluation)] + ([("guard", guard)] if guard is not None else [])
        for name, ds in sets:
            build_encoder_cache(
                m,
                ds,
                train_plan.encoder_cache / name,
                cache_fingerprint(worker.job.model.name, inputs.item_ids(ds), extra=name),
                rank=worker.info.rank,
                world_size=worker.info.world_size,
                device=worker.device,
                batch_size=t.eval_batch_size or batch_of(t),
            )
        train = CachedEncoderDataset(train, train_plan.encoder_cache / "train")
        evaluation = CachedEncoderDataset(evaluation, train_plan.encoder_cache / "eval")
        if guard is not None:
            guard = CachedEncoderDataset(guard, train_plan.encoder_cache / "guard")
        collator = CachedEncoderCollator(collator, model.decoder_start_id)
    elif train_plan.in_memory:  # one tensor per set, batched by indexing (train/tensor_data.py)
        dtype = torch.float16 if worker.precision in ("bf16", "fp16") else torch.float32
        train, evaluation = (
            tensor_data.materialize(d, train_plan.n_frames, dtype) for d in (train, evaluation)
        )
        collator = tensor_data.TensorBatches(model.decoder_start_id, collator)
    fastpath.apply_fast_path(m, train_plan.fast_path)
    log.info("fast path: %s", train_plan.fast_path.to_dict())
    if worker.info.rank == 0:
        run_files.write_json(worker.cfg.run_dir, run_files.FAST_PATH_FILE, train_plan.to_dict())
        record_plan(train_plan.gpu_plan, worker.cfg.run_dir)
    if reference is not None:
        reference.model.to(worker.device)
    return Prepared(m, train, evaluation, collator, data.lengths, guard, reference)


def trainer_arguments(worker: Worker, train_plan: TrainPlan) -> Seq2SeqTrainingArguments:
    """The job's hyper-parameters, its DeepSpeed config and the plan, as Trainer arguments."""
    return training_arguments(
        worker.job,
        train_plan.fast_path,
        output_dir=worker.cfg.hf_output_dir,
        use_gpu=worker.use_gpu,
        deepspeed=load_deepspeed_config(worker.job.train.deepspeed),
        rank=worker.info.rank,
    )


def callbacks(worker: Worker) -> list[TrainerCallback]:
    """Final save, throughput (rank 0 records it), TensorBoard (rank 0), checkpoints (Ray or local)."""
    job, info, run_dir = worker.job, worker.info, worker.cfg.run_dir
    t = job.train
    global_batch = batch_of(t) * t.gradient_accumulation_steps * info.world_size
    found: list[TrainerCallback] = [
        FinalEvalSave(),
        Throughput(global_batch, run_dir if info.rank == 0 else None),
    ]
    if info.rank == 0:
        tb = tensorboard_callback(run_dir)
        if tb is not None:
            found.append(tb)
        if not run_files.is_remote(run_dir):
            found.append(ProgressFile(run_dir))  # the driver's progress bar reads it
    if worker.cfg.use_ray:
        local = None if run_files.is_remote(job.run.storage_path) else Path(run_dir)
        found.append(ray_report_callback(info.local_rank, local))
    else:
        found.append(LocalCheckpoints(run_dir, job.run.num_to_keep))
    return found


def build_trainer(
    worker: Worker,
    model: ModelState,
    ready: Prepared,
    args: Seq2SeqTrainingArguments,
    installed: list[TrainerCallback],
) -> WhisperTrainer:
    """The Trainer over the prepared model and data (length-grouped batches if asked);
    under Ray, prepared for Ray Train (``prepare_trainer``)."""
    trainer = WhisperTrainer(
        model=ready.model,
        args=args,
        train_dataset=ready.train,
        eval_dataset=ready.eval,
        data_collator=ready.collator,
        compute_metrics=_deps.make_compute_metrics(model.processor, worker.job.eval.normalizer),
        processing_class=model.processor,
        callbacks=installed,
    )
    trainer.guard_dataset = ready.guard
    trainer.guard_tolerance = worker.job.run.guard_tolerance
    if ready.reference is not None:
        trainer.reference = ready.reference
        trainer.kl_weight = worker.job.train.kl_to_base
    if ready.lengths is not None:
        t = worker.job.train
        trainer.length_sampler = LengthBucketSampler(ready.lengths, batch_of(t), seed=t.seed)
    if worker.cfg.use_ray:
        from ray.train.huggingface.transformers import prepare_trainer

        trainer = prepare_trainer(trainer)  # type: ignore[assignment]  # the same object, patched
    return trainer


def resume(worker: Worker) -> contextlib.AbstractContextManager[str | None]:
    """The HF checkpoint to resume from while the block runs, or None (``run_files.resume_checkpoint``)."""
    return run_files.resume_checkpoint(worker.cfg.use_ray, worker.cfg.run_dir)


def fit(worker: Worker, trainer: WhisperTrainer, resume_from: str | None) -> dict[str, Any]:
    """Train (from ``resume_from`` when given); rank 0 removes the Trainer's own output dir."""
    if resume_from:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=resume_from)
    result = {"global_step": int(trainer.state.global_step), "world_size": worker.info.world_size}
    if worker.info.rank == 0:
        shutil.rmtree(worker.cfg.hf_output_dir, ignore_errors=True)
    return result


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every step in order (rank 0 records their seconds); returns ``{"global_step", "world_size"}``."""
    c = run_files.StepClock()
    worker = c.done("setup", setup_worker(WorkerConfig.from_mapping(config)))
    model = c.done("model", build_model(worker))
    # data prepared while workers start; its failure is the launcher's to raise (not a Ray restart)
    if worker.cfg.wait_for_data and (
        failed := c.done("wait_data", run_files.wait_for_data(worker.cfg.run_dir))
    ):
        log.warning("no training: the launcher's data preparation failed (%s)", failed)
        return {"global_step": 0, "world_size": worker.info.world_size}
    data = c.done("data", load_datasets(worker, model))
    train_plan = c.done("plan", plan(worker, data, model))
    ready = c.done("apply_plan", apply_plan(worker, model, data, train_plan))
    args = trainer_arguments(worker, train_plan)
    trainer = c.done("trainer", build_trainer(worker, model, ready, args, callbacks(worker)))
    if worker.info.rank == 0:
        run_files.update_json(worker.cfg.run_dir, run_files.FAST_PATH_FILE, setup_s=c.marks)
    with resume(worker) as resume_from:
        result = c.done("train", fit(worker, trainer, resume_from))
    if worker.info.rank == 0:  # when each step ended (epoch seconds): where a run's time went
        run_files.update_json(worker.cfg.run_dir, run_files.FAST_PATH_FILE, timeline=c.timeline)
    return result
