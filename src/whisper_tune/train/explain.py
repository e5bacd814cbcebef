"""Every training-config key with its type, default and meaning, read from the dataclasses.

Why: a user should not have to read YAML files or Python to learn what ``train.eval_steps``
does. The list ``whisper-tune config --explain`` prints is generated from the ``JobConfig``
dataclass tree itself, so a new field shows up by itself: its type from the annotation, its
default from the dataclass, its meaning from the comment written beside it in the source (the
trailing ``# ...`` on the field's line, else the comment lines directly above it). Fields whose
comment is missing or only says what the default means take their line from ``FIELD_HELP``
below (shown before the comment); a unit test fails for any field that has neither, and for a
``FIELD_HELP`` key no field has, so the list cannot go stale silently. (The help is not kept
as ``field(metadata=...)`` because it would double the size of ``train/config.py``.)
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from typing import Any

from whisper_tune.train.config import JobConfig

__all__ = ["ConfigKey", "FIELD_HELP", "config_keys", "explain_text"]

# One line for the fields defined without a comment beside them (dotted key -> meaning).
FIELD_HELP: dict[str, str] = {
    "model.name": "the Whisper to start from: a registry name (tiny.en, base, small), a HF model dir or hub id",
    "data.feature_cache": "folder of the cached log-mel features",
    "train.max_steps": "total optimizer steps",
    "train.encoder_cache_dir": "folder of the cached encoder outputs (train.cache_encoder_outputs)",
    "train.torch_threads": "torch threads per CPU worker",
    "train.encoder_frames": "encoder input length in mel frames (100 a second)",
    "scaling.num_workers": "Ray Train workers (processes, each with a model replica)",
    "scaling.cpus_per_worker": "CPUs Ray reserves per worker",
    "scaling.gpus_per_worker": "GPUs Ray reserves per worker",
    "run.name": "the run's folder under run.storage_path; an existing name resumes that run",
    "model.task": "the decoder task token: transcribe (same language) or translate (to English)",
    "model.attn_implementation": "attention kernel: sdpa (PyTorch's fused attention) or eager",
    "data.train": "training manifest (JSONL/CSV of audio + text, SRT/VTT, segments) or a list of them; required",
    "data.eval": "evaluation manifest; its WER (eval_wer) scores every checkpoint; required",
    "data.text_column": "manifest column holding the transcript (default: text / sentence / transcription)",
    "data.audio_column": "manifest column holding the audio path (default: audio / path / file)",
    "data.root": "folder relative audio paths are resolved against (default: the manifest's folder)",
    "data.max_label_tokens": "longest transcript in tokens (1..448, Whisper's decoder limit); longer: skipped",
    "data.max_train_samples": "use at most this many training utterances (null: all)",
    "data.max_eval_samples": "score at most this many evaluation utterances per evaluation (null: all)",
    "data.num_workers": "processes that compute log-mel features into the feature cache",
    "data.guard_at": "every_eval: the guard is scored at every evaluation and ranks checkpoints; "
    "export: only the exported model is checked (one evaluation per run: saves two guard passes)",
    "data.max_guard_samples": "score at most this many real-speech guard utterances (null: all)",
    "train.strategy": "which weights learn: full, decoder, cross_attention, encoder, or lora adapters",
    "train.lora": "LoRA adapter shape (train.strategy: lora)",
    "train.lora.r": "LoRA rank",
    "train.lora.alpha": "LoRA scaling numerator (the update is scaled by alpha / r)",
    "train.lora.dropout": "dropout on the LoRA input (0..1)",
    "train.lora.target_modules": "module names that get adapters (e.g. q_proj, v_proj)",
    "train.learning_rate": "peak learning rate of AdamW",
    "train.weight_decay": "AdamW weight decay",
    "train.warmup_steps": "optimizer steps of linear learning-rate warm-up",
    "train.lr_scheduler": "learning-rate schedule after the warm-up",
    "train.num_epochs": "passes over the training data (fractions allowed); train.max_steps > 0 overrides it",
    "train.per_device_batch_size": "training utterances per worker per step (before accumulation)",
    "train.eval_batch_size": "utterances per generation batch during evaluation (null: the training batch size)",
    "train.gradient_accumulation_steps": "micro-batches summed into one optimizer step",
    "train.max_grad_norm": "gradient clipping norm",
    "train.gradient_checkpointing": "recompute activations in the backward pass (less memory, ~30 % slower)",
    "train.precision": "auto (bf16/fp16 on GPUs that support it, fp32 on CPU), bf16, fp16 or fp32",
    "train.spec_augment": "SpecAugment masking of the log-mel input during training",
    "train.mask_time_prob": "SpecAugment: share of time frames masked (with train.spec_augment)",
    "train.mask_feature_prob": "SpecAugment: share of mel bins masked (with train.spec_augment)",
    "train.logging_steps": "log loss and learning rate every this many steps (TensorBoard)",
    "train.eval_steps": "evaluate (eval WER, guard WER) every this many steps",
    "train.save_steps": "save a checkpoint every this many steps (a multiple of train.eval_steps)",
    "train.eval_on_start": "evaluate before the first step (on by itself when a guard is used)",
    "train.seed": "random seed of the Trainer (data order, dropout)",
    "train.generation_max_length": "longest generated transcript in tokens during evaluation",
    "train.generation_num_beams": "beam width during evaluation (1: greedy)",
    "train.dataloader_num_workers": "DataLoader worker processes per Ray worker (0: in the worker itself)",
    "run.storage_path": "where runs live: a folder or a URI (s3://bucket/runs); the run is <storage>/<name>",
    "run.num_to_keep": "checkpoints kept, the best by score (eval WER, +1 when the guard regressed)",
    "run.max_failures": "times Ray Train restarts a failed worker group from the last checkpoint",
    "run.ct2_quantization": "CTranslate2 weight type of best/ct2, e.g. int8, float16 (null: the model's)",
    "run.interpolate": "when no checkpoint keeps the guard: export a WiSE-FT mix of tuned and base weights",
    "run.interpolation_alphas": "the mixing ratios tried for that export (tuned share, each in (0, 1))",
    "eval.normalizer": "text normalisation before WER: whisper_en (Whisper's English), basic, or none",
}


@dataclass(frozen=True)
class ConfigKey:
    """One key of the training config."""

    key: str  # dotted, e.g. train.learning_rate
    type: str
    default: str
    help: str


def _type_text(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else a for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_text(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_text(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def source_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment written beside it in ``cls``'s source (trailing, else above)."""
    src = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    found: dict[str, str] = {}
    body = ast.parse(src).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = node.end_lineno or node.lineno
        trailing = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
        if trailing:
            found[node.target.id] = " ".join(trailing)
            continue
        above: list[str] = []
        n = node.lineno - 1
        while n in comments and n not in code_lines:
            above.insert(0, comments[n])
            n -= 1
        if above:
            found[node.target.id] = " ".join(above)
    return found


def config_keys(root: type = JobConfig, prefix: str = "") -> list[ConfigKey]:
    """Every key under the dataclass ``root`` (sections recursed), in definition order."""
    hints = typing.get_type_hints(root)
    comments = source_comments(root)
    keys: list[ConfigKey] = []
    for f in dataclasses.fields(root):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        text = "; ".join(t for t in (FIELD_HELP.get(key), comments.get(f.name)) if t)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if prefix:  # a nested section (train.lora): list it, then its keys
                keys.append(ConfigKey(key, "section", "", text or (inspect.getdoc(tp) or "")))
            keys.extend(config_keys(tp, f"{key}."))
            continue
        keys.append(ConfigKey(key, _type_text(tp), _default_text(f), text))
    return keys


def explain_text(width: int = 100) -> str:
    """``whisper-tune config --explain``: every key, grouped by section, two lines each."""
    out: list[str] = [
        "Training config keys (YAML sections, or dotted overrides: train.learning_rate=1e-5).",
    ]
    section = ""
    sections = typing.get_type_hints(JobConfig)
    for k in config_keys():
        top = k.key.split(".", 1)[0]
        if top != section:
            section = top
            doc = inspect.getdoc(sections[top]) or ""
            out += ["", f"{section}:  {doc.splitlines()[0] if doc else ''}".rstrip()]
        head = f"  {k.key}  ({k.type}" + (f", default {k.default})" if k.default else ")")
        out.append(head)
        out += textwrap.wrap(k.help, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(out) + "\n"
