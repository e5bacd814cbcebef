"""The HF ``Seq2SeqTrainer`` as training runs it: Whisper specifics and the arguments of a job.

Why: a job's hyper-parameters and the fast-path plan become one ``Seq2SeqTrainingArguments``
here and nowhere else, so the training recipe and the throughput benchmark
(``bench/train_throughput.py``) run the very same Trainer configuration. Imports only
torch/transformers and the train config (no data pipeline, Ray or DeepSpeed), so the
benchmark can use it on a machine that has nothing else.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.modeling_outputs import BaseModelOutput

from whisper_tune.train.config import JobConfig
from whisper_tune.train.fastpath import FastPathPlan, training_args_overrides, uncompiled
from whisper_tune.train.guard import GUARD_PREFIX, guard_fields, guard_in_training
from whisper_tune.train.plan import batch_of, generation_length_of

__all__ = ["WhisperTrainer", "training_arguments"]


class WhisperTrainer(Seq2SeqTrainer):
    """Seq2SeqTrainer that can generate from cached encoder outputs during evaluation, groups
    batches by audio length (``length_sampler``), generates eagerly from a compiled model,
    scores the real-speech guard beside eval (``guard_dataset``; ``train/guard.py``) and adds
    a KL term to the frozen base model (``reference``, ``kl_weight``; ``train/distill.py``)."""

    length_sampler: Any = None  # a LengthBucketSampler, or None for the Trainer's shuffling
    guard_dataset: Any = None  # evaluated with every evaluation as metrics guard_*
    guard_tolerance: float = 0.0  # run.guard_tolerance
    reference: Any = None  # distill.ReferenceModel, or None
    kl_weight: float = 0.0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def,override]
        if self.reference is None or not model.training:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        loss = loss + self.kl_weight * self.reference.kl(outputs.logits, inputs)
        return (loss, outputs) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval", **gen_kwargs):  # type: ignore[no-untyped-def,override]
        self.generate_s = 0.0
        metrics = super().evaluate(
            eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix, **gen_kwargs
        )
        # the share of eval_runtime spent generating (the rest: data, decoding, WER)
        metrics[f"{metric_key_prefix}_generate_runtime"] = round(self.generate_s, 3)
        if eval_dataset is not None or metric_key_prefix != "eval":
            return metrics
        if self.guard_dataset is not None:
            metrics.update(
                super().evaluate(
                    self.guard_dataset, ignore_keys=ignore_keys, metric_key_prefix=GUARD_PREFIX, **gen_kwargs
                )
            )
        extra = guard_fields(
            self.state.log_history, {**metrics, "step": self.state.global_step}, self.guard_tolerance
        )
        if extra:
            self.log(extra)  # TensorBoard, and log_history (what the checkpoint callbacks report)
            metrics.update(extra)
        return metrics

    def get_eval_dataloader(self, eval_dataset=None):  # type: ignore[no-untyped-def,override]
        # A compiled run drops the last partial *training* batch (dataloader_drop_last, one shape);
        # evaluation must score every clip (an eval batch larger than the set dropped all of it).
        drop = self.args.dataloader_drop_last
        object.__setattr__(self.args, "dataloader_drop_last", False)
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            object.__setattr__(self.args, "dataloader_drop_last", drop)

    # *args: the signature differs between transformers versions (4.x: none, 5.x: the dataset).
    def _get_train_sampler(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        if self.length_sampler is not None:
            return self.length_sampler
        return super()._get_train_sampler(*args, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):  # type: ignore[no-untyped-def,override]
        enc = inputs.get("encoder_outputs")
        if enc is not None and not isinstance(enc, BaseModelOutput):
            inputs = {**inputs, "encoder_outputs": BaseModelOutput(last_hidden_state=enc[0])}
        # generate() calls the model once per token with a growing cache: a training-compiled
        # graph would recompile for each length. Run it eagerly (the graphs are kept).
        t0 = time.perf_counter()
        with uncompiled(self.model), _generate_autocast(self.args):
            out = super().prediction_step(
                model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs
            )
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # once per eval batch, so generate_s is the device's time too
        self.generate_s = getattr(self, "generate_s", 0.0) + time.perf_counter() - t0
        return out


def _generate_autocast(args: Any) -> Any:
    """bf16/fp16 autocast around ``generate()``: accelerate's autocast wraps only the model's
    ``forward``, so the encoder pass generate() makes through ``get_encoder()`` ran in fp32.
    On CUDA also the attention backends of :func:`_eval_sdpa_backends`."""
    half = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    on_cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    stack = contextlib.ExitStack()
    if on_cuda:
        stack.enter_context(_eval_sdpa_backends())
    if half is None:
        return stack
    if on_cuda:
        stack.enter_context(torch.autocast("cuda", dtype=half))
    elif args.bf16:  # a CPU worker trains in bf16 only where the CPU does it in hardware
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    return stack


def _eval_sdpa_backends() -> Any:
    """Every SDPA backend but cuDNN attention while ``generate()`` decodes on CUDA.

    Each decode step attends over a KV cache one token longer than the step before, so every
    step is a new attention shape, and cuDNN attention pays a set-up per new shape. Measured on
    one H200 (torch 2.11; a fresh process, 500 clips, batch 512, 39 new tokens; docs/performance.md):
    the first evaluation took 8.7 s with SDPA's own choice, 6.4 s with cuDNN attention alone,
    2.0-2.8 s with these backends; later evaluations 1.5-2.2 s in every case. The run's first
    evaluation is often its only one. Training keeps SDPA's own choice (its shapes are fixed).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def training_arguments(
    job: JobConfig,
    plan: FastPathPlan,
    *,
    output_dir: str,
    use_gpu: bool,
    deepspeed: dict[str, Any] | None = None,
    rank: int = 0,
) -> Seq2SeqTrainingArguments:
    """The Trainer arguments for ``job`` run under ``plan`` (precision, optimizer, loader, ...).

    Evaluation and saving are by steps (``save_steps`` is a multiple of ``eval_steps``, checked
    in the config), so every checkpoint carries the ``eval_wer`` of its own weights; the HF
    Trainer keeps one checkpoint of its own (the run's checkpoints are copied out by the
    callbacks). No worker shows a progress bar of its own (the driver shows one).
    """
    t = job.train
    return Seq2SeqTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_of(t),
        per_device_eval_batch_size=t.eval_batch_size or batch_of(t),
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps,
        lr_scheduler_type=t.lr_scheduler,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps,
        max_grad_norm=t.max_grad_norm,
        use_cpu=not use_gpu,
        deepspeed=deepspeed,
        eval_strategy="steps",
        eval_steps=t.eval_steps,
        # the step-0 evaluation gives the base model's guard WER, which the guard bound needs
        eval_on_start=t.eval_on_start or guard_in_training(job.data),
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        predict_with_generate=True,
        generation_max_length=generation_length_of(t),
        generation_num_beams=t.generation_num_beams,
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        seed=t.seed,
        ddp_find_unused_parameters=False,
        log_level="warning",
        disable_tqdm=True,  # the driver shows one bar, fed by rank 0's progress.json (train/progress.py)
        **training_args_overrides(plan),
    )
