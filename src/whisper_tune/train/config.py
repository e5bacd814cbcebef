"""The typed training-job configuration (``JobConfig``) and its validation.

Why: a distributed run that dies after Ray has started ten workers, or an hour into
training, because of a typo is the most expensive kind of bug. Every section is a
dataclass whose ``__post_init__`` rejects bad values naming the dotted key; the
cross-section checks (ZeRO-3 on CPU, LoRA + ZeRO-3, ``save_steps`` not a multiple of
``eval_steps``...) run in ``JobConfig.__post_init__``; the checks that need the cluster
(how many workers fit, whether GPUs exist) run in :func:`check_placement`, still before
any training starts. The resolved config is written into every run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from whisper_tune.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from whisper_tune.train.guard_select import DEFAULT_ALPHAS
from whisper_tune.train.sections import EvalSection, ReportSection

__all__ = [
    "DEEPSPEED_PRESETS",
    "DataSection",
    "EvalSection",
    "JobConfig",
    "LoraSection",
    "ModelSection",
    "ReportSection",
    "RunSection",
    "ScalingSection",
    "TrainSection",
    "check_placement",
    "load_job_config",
]

DEEPSPEED_PRESETS: tuple[str, ...] = ("none", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")
_GPU_ONLY_PRESETS = ("zero3", "zero2_offload", "zero3_offload")

Strategy = Literal["full", "decoder", "cross_attention", "encoder", "lora"]
# strategies whose encoder is frozen: its output is a constant per clip and can be cached
FROZEN_ENCODER_STRATEGIES = ("decoder", "cross_attention")
Precision = Literal["auto", "bf16", "fp16", "fp32"]


def _positive(key: str, value: float | int | str | None, *, allow_zero: bool = False) -> None:
    if value is None or isinstance(value, str):  # "auto": the GPU plan decides (train/plan.py)
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _fraction(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be between 0 and 1, got {value!r}")


@dataclass
class ModelSection:
    """Which Whisper to start from (anything ``whisper_tune.models.load_model`` resolves)."""

    name: str = "tiny.en"
    language: str | None = None  # multilingual models only, e.g. "en"
    task: Literal["transcribe", "translate"] = "transcribe"
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("model.name: must not be empty")


@dataclass
class DataSection:
    """Manifests (JSONL/CSV/audiofolder/hf://) for training and evaluation."""

    train: str | list[str] = ""  # a list: several manifests (clips and call recordings) as one set
    eval: str = ""
    text_column: str | None = None
    audio_column: str | None = None
    root: str | None = None
    max_label_tokens: int = 448
    long_audio: Literal["reject", "error"] = "reject"  # too-long clips: counted skip, or fail
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    feature_cache: str | None = None  # default: <run dir>/features
    num_workers: int = 1
    # Real-speech guard (docs/data.md): "builtin" (recordings that Debian/PyPI packages ship), a
    # manifest of your own general speech, or "none" (the run reports "no real-speech guard").
    guard: str = "builtin"
    guard_at: Literal["every_eval", "export"] = "every_eval"  # export: scored only on the export
    max_guard_samples: int | None = None
    timestamp_share: float = 0.0  # share of training clips with timestamped labels (data/timestamps.py)
    pack_share: float = 0.0  # share of training clips packed into full 30 s windows (data/packing.py)
    channels: Literal["mix", "split"] = "mix"  # long recordings: a stream per channel, or down-mixed
    window_timestamp_share: float = 0.5  # long-recording windows keeping timestamp tokens (data/windows.py)
    window_prev_share: float = 0.2  # long-recording windows prompted with the previous window's text

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("data.train: a training manifest is required")
        if not self.eval:
            raise ConfigError(
                "data.eval: an evaluation manifest is required (the checkpoint score is eval_wer)"
            )
        if not 1 <= self.max_label_tokens <= 448:
            raise ConfigError(f"data.max_label_tokens: must be in 1..448, got {self.max_label_tokens}")
        _positive("data.max_train_samples", self.max_train_samples)
        _positive("data.max_eval_samples", self.max_eval_samples)
        _positive("data.num_workers", self.num_workers)
        _positive("data.max_guard_samples", self.max_guard_samples)
        for key in ("timestamp_share", "pack_share", "window_timestamp_share", "window_prev_share"):
            _fraction(f"data.{key}", getattr(self, key))
        if not str(self.guard).strip():
            raise ConfigError(
                "data.guard: empty; use 'builtin', a general-speech manifest, or 'none' to run without a guard"
            )


@dataclass
class LoraSection:
    """LoRA adapter shape (``train.strategy: lora``); merged into the base on export."""

    r: int = 32
    alpha: int = 64
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def __post_init__(self) -> None:
        _positive("train.lora.r", self.r)
        _positive("train.lora.alpha", self.alpha)
        _fraction("train.lora.dropout", self.dropout)
        if not self.target_modules:
            raise ConfigError("train.lora.target_modules: must name at least one module (e.g. q_proj)")


@dataclass
class TrainSection:
    """Hyper-parameters and strategy of the per-worker Seq2SeqTrainer."""

    strategy: Strategy = "full"
    lora: LoraSection = field(default_factory=LoraSection)
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_scheduler: Literal["linear", "constant", "constant_with_warmup", "cosine"] = "linear"
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    per_device_batch_size: int | Literal["auto"] = 8  # auto: sized to GPU memory (train/plan.py)
    eval_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    precision: Precision = "auto"
    deepspeed: str = "none"  # a preset (DEEPSPEED_PRESETS), a DeepSpeed JSON path, or auto (plan.py)
    spec_augment: bool = False
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0
    cache_encoder_outputs: bool = False  # frozen-encoder strategies only: run the encoder once
    encoder_cache_dir: str | None = None  # default: <run dir>/encoder_cache
    logging_steps: int = 10
    eval_steps: int = 100
    save_steps: int = 100
    eval_on_start: bool = False
    kl_to_base: float = 0.0  # weight of KL(base || tuned) on label tokens (train/distill.py); 0 = off
    frozen_encoder_layers: int = 0  # strategy encoder: conv front end + this many lowest layers stay frozen
    seed: int = 42
    generation_max_length: int | Literal["auto"] = 225  # auto: from the longest label (plan.py)
    generation_num_beams: int = 1
    torch_threads: int | None = None  # CPU workers; default: cores / workers on the node
    dataloader_num_workers: int = 0
    # GPU fast path / short-audio path (whisper_tune.train.fastpath; docs/performance.md).
    encoder_frames: int | None = None  # null: Whisper's 3000 mel frames (30 s); else a shorter context
    short_audio: bool | Literal["auto"] = False  # context from the longest clip (+ margin); auto: if it pays
    encoder_margin_frames: int = 64  # trailing frames kept after the longest clip (>= 32)
    group_by_length: bool = False  # batches of similar audio length (LengthBucketSampler)
    compile: bool | Literal["auto", "model", "encoder", "none"] = (
        "auto"  # torch.compile (auto: GPU, long runs)
    )

    def __post_init__(self) -> None:
        _positive("train.learning_rate", self.learning_rate)
        _positive("train.weight_decay", self.weight_decay, allow_zero=True)
        _positive("train.warmup_steps", self.warmup_steps, allow_zero=True)
        _positive("train.num_epochs", self.num_epochs)
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"train.max_steps: must be -1 (use num_epochs) or > 0, got {self.max_steps}")
        _positive("train.per_device_batch_size", self.per_device_batch_size)
        _positive("train.eval_batch_size", self.eval_batch_size)
        _positive("train.gradient_accumulation_steps", self.gradient_accumulation_steps)
        _positive("train.max_grad_norm", self.max_grad_norm)
        _fraction("train.mask_time_prob", self.mask_time_prob)
        _fraction("train.mask_feature_prob", self.mask_feature_prob)
        _positive("train.logging_steps", self.logging_steps)
        _positive("train.eval_steps", self.eval_steps)
        _positive("train.save_steps", self.save_steps)
        _positive("train.generation_max_length", self.generation_max_length)
        _positive("train.generation_num_beams", self.generation_num_beams)
        _positive("train.torch_threads", self.torch_threads)
        _positive("train.dataloader_num_workers", self.dataloader_num_workers, allow_zero=True)
        _positive("train.kl_to_base", self.kl_to_base, allow_zero=True)
        _positive("train.frozen_encoder_layers", self.frozen_encoder_layers, allow_zero=True)
        if self.frozen_encoder_layers and self.strategy != "encoder":
            raise ConfigError(f"train.frozen_encoder_layers: for strategy encoder, not {self.strategy!r}")
        if self.save_steps % self.eval_steps:
            raise ConfigError(
                f"train.save_steps: {self.save_steps} must be a multiple of train.eval_steps "
                f"({self.eval_steps}); otherwise the eval_wer reported with a checkpoint is stale"
            )
        if self.deepspeed not in (*DEEPSPEED_PRESETS, "auto") and not self.deepspeed.endswith(".json"):
            raise ConfigError(
                f"train.deepspeed: {self.deepspeed!r} is neither a preset {list(DEEPSPEED_PRESETS)} "
                "nor a path to a .json file"
            )
        if self.cache_encoder_outputs and self.strategy not in FROZEN_ENCODER_STRATEGIES:
            raise ConfigError(
                f"train.cache_encoder_outputs: needs a frozen encoder (train.strategy one of "
                f"{list(FROZEN_ENCODER_STRATEGIES)}), got {self.strategy!r}"
            )
        if self.cache_encoder_outputs and self.spec_augment:
            raise ConfigError(
                "train.spec_augment: has no effect with train.cache_encoder_outputs "
                "(the encoder runs once, masks would be frozen); turn one off"
            )

        self._check_context()

    def _check_context(self) -> None:
        """Shortened encoder context: shape rules and the combinations that cannot work."""
        if self.encoder_margin_frames < 32:
            raise ConfigError(
                f"train.encoder_margin_frames: must be >= 32 (the model needs trailing silence to see "
                f"the end of speech), got {self.encoder_margin_frames}"
            )
        n = self.encoder_frames
        if n is not None:
            if self.short_audio is True:
                raise ConfigError(
                    "train.encoder_frames: set together with train.short_audio (which chooses it from "
                    "the data); set only one"
                )
            if not 0 < n <= 3000 or n % 2:
                raise ConfigError(
                    f"train.encoder_frames: must be an even number of mel frames in 2..3000 "
                    f"(the encoder's stride-2 conv halves it; 3000 = 30 s), got {n}"
                )
            if n < 3000 and n <= self.encoder_margin_frames:
                raise ConfigError(
                    f"train.encoder_frames: {n} leaves no room for audio after the "
                    f"{self.encoder_margin_frames}-frame margin (train.encoder_margin_frames)"
                )
        if self.cache_encoder_outputs and self.shortens_context():
            raise ConfigError(
                "train.cache_encoder_outputs: cannot be combined with a shortened encoder context "
                "(train.encoder_frames / train.short_audio); the cached outputs are for 30 s inputs"
            )

    def shortens_context(self) -> bool:
        """Whether the encoder context may be shorter than Whisper's 3000 frames."""
        return self.short_audio is True or (self.encoder_frames is not None and self.encoder_frames < 3000)

    def max_clip_seconds(self) -> float:
        """Longest clip accepted into the data (longer: a counted ``too_long`` skip)."""
        if self.encoder_frames is not None and self.encoder_frames < 3000:
            return (self.encoder_frames - self.encoder_margin_frames) / 100.0
        return 30.0

    def deepspeed_preset_or_path(self) -> str | None:
        return None if self.deepspeed == "none" else self.deepspeed

    def deepspeed_stage(self) -> int:
        """ZeRO stage of the chosen preset/file (0 for none)."""
        if self.deepspeed in ("none", "auto"):  # auto: the plan never picks ZeRO-3 where it cannot run
            return 0
        if self.deepspeed in DEEPSPEED_PRESETS:
            return int(self.deepspeed[4])
        try:
            data = json.loads(Path(self.deepspeed).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"train.deepspeed: cannot read {self.deepspeed}: {exc}") from exc
        return int(data.get("zero_optimization", {}).get("stage", 0))

    def deepspeed_offloads(self) -> bool:
        if self.deepspeed in DEEPSPEED_PRESETS:
            return self.deepspeed.endswith("_offload")
        if self.deepspeed in ("none", "auto"):
            return False
        data = json.loads(Path(self.deepspeed).read_text(encoding="utf-8"))
        zero = data.get("zero_optimization", {})
        return any(
            str(zero.get(k, {}).get("device", "none")) != "none"
            for k in ("offload_optimizer", "offload_param")
        )


@dataclass
class ScalingSection:
    """How many Ray Train workers, and what each gets."""

    num_workers: int = 1
    use_gpu: bool | None = None  # None = use GPUs when the cluster has them
    cpus_per_worker: float | None = None  # default 1
    gpus_per_worker: float | None = None  # default 1 when use_gpu
    resources_per_worker: dict[str, float] | None = None  # extra custom resources

    def __post_init__(self) -> None:
        _positive("scaling.num_workers", self.num_workers)
        _positive("scaling.cpus_per_worker", self.cpus_per_worker)
        _positive("scaling.gpus_per_worker", self.gpus_per_worker)
        if self.gpus_per_worker and self.use_gpu is False:
            raise ConfigError("scaling.gpus_per_worker: set but scaling.use_gpu is false")

    def worker_resources(self, use_gpu: bool) -> dict[str, float]:
        res = dict(self.resources_per_worker or {})
        res["CPU"] = float(self.cpus_per_worker or 1)
        if use_gpu:
            res["GPU"] = float(self.gpus_per_worker or 1)
        return res


@dataclass
class RunSection:
    """Where the run lives (``<storage_path>/<name>``) and how failures/checkpoints are handled."""

    name: str = ""  # default: "<config stem>-<timestamp>" chosen by the launcher
    storage_path: str = "runs"
    num_to_keep: int = 2
    max_failures: int = 0
    ray_address: str | None = None  # None: start a local Ray on 127.0.0.1
    new_run: bool = False  # if the name exists: False resumes it, True picks a fresh suffixed name
    export_best: bool = True  # write <run>/best after training
    ct2: bool = False  # also export best/ct2 (CTranslate2)
    ct2_quantization: str | None = None
    # Export rule (train/guard_select.py): a checkpoint is admissible when its guard WER is at most
    # base guard WER x (1 + guard_tolerance); none admissible -> interpolate with the base weights.
    guard_tolerance: float = 0.0
    interpolate: bool = True
    interpolation_alphas: list[float] = field(default_factory=lambda: list(DEFAULT_ALPHAS))

    def __post_init__(self) -> None:
        _positive("run.guard_tolerance", self.guard_tolerance, allow_zero=True)
        for a in self.interpolation_alphas:
            if not 0.0 < float(a) < 1.0:
                raise ConfigError(f"run.interpolation_alphas: each must be in (0, 1), got {a}")
        if self.name and ("/" in self.name or self.name.startswith(".")):
            raise ConfigError(f"run.name: {self.name!r} must be a plain folder name")
        _positive("run.num_to_keep", self.num_to_keep)
        _positive("run.max_failures", self.max_failures, allow_zero=True)
        if not self.storage_path:
            raise ConfigError("run.storage_path: must not be empty")


@dataclass(kw_only=True)
class JobConfig:
    """One fine-tuning job: ``whisper-tune train --config X.yaml [section.key=value ...]``."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection  # required: there is no sensible default data set
    train: TrainSection = field(default_factory=TrainSection)
    scaling: ScalingSection = field(default_factory=ScalingSection)
    run: RunSection = field(default_factory=RunSection)
    eval: EvalSection = field(default_factory=EvalSection)
    report: ReportSection = field(default_factory=ReportSection)

    def __post_init__(self) -> None:
        t = self.train
        if t.strategy == "lora" and t.deepspeed_stage() == 3:
            raise ConfigError(
                "train.deepspeed: LoRA with ZeRO-3 is not supported here (adapters on sharded "
                "weights); use zero2 or none"
            )
        if t.cache_encoder_outputs and t.deepspeed_stage() == 3:
            raise ConfigError(
                "train.deepspeed: train.cache_encoder_outputs cannot run the encoder outside a ZeRO-3 engine; "
                "use zero2 or none"
            )
        if self.data.pack_share > 0:
            if t.cache_encoder_outputs:
                raise ConfigError(
                    "data.pack_share: packed windows are for a trainable encoder; "
                    "train.cache_encoder_outputs caches per clip -- turn one off"
                )
            if t.short_audio is True or (t.encoder_frames is not None and t.encoder_frames < 3000):
                raise ConfigError(
                    "data.pack_share: packed windows fill the full 30 s context; "
                    "drop train.short_audio / train.encoder_frames"
                )
        if self.scaling.use_gpu is False:
            self.check_cpu_compatible()

    def check_cpu_compatible(self) -> None:
        """Raise for settings that need a GPU (called once it is known that there is none)."""
        t = self.train
        if t.deepspeed in _GPU_ONLY_PRESETS or (
            t.deepspeed not in DEEPSPEED_PRESETS and (t.deepspeed_stage() == 3 or t.deepspeed_offloads())
        ):
            raise ConfigError(
                f"train.deepspeed: {t.deepspeed!r} needs GPUs (ZeRO-3 / CPU offload do not run on CPU "
                "workers); use zero1, zero2 or none"
            )
        if t.precision == "fp16":
            raise ConfigError("train.precision: fp16 needs a GPU; use auto, fp32 or bf16 on CPU")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> JobConfig:
        return from_dict(cls, data)


def load_job_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """Read a YAML config (or none) and apply dotted overrides; errors name the key."""
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    where = f"{path}: " if path is not None else ""
    if "data" not in data:
        raise ConfigError(f"{where}data: section is required (data.train and data.eval manifests)")
    try:
        return from_dict(JobConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from exc


def check_placement(cfg: JobConfig, resources: dict[str, float]) -> bool:
    """Check the workers fit ``resources`` (``ray.cluster_resources()`` or the local machine).

    Returns whether workers use GPUs (resolving ``scaling.use_gpu: null``). Raises a
    ConfigError naming ``scaling.num_workers`` when they cannot all be placed, because Ray
    would otherwise wait for resources forever.
    """
    s = cfg.scaling
    gpus = float(resources.get("GPU", 0.0))
    use_gpu = (gpus > 0) if s.use_gpu is None else s.use_gpu
    if use_gpu and gpus <= 0:
        raise ConfigError("scaling.use_gpu: true but the cluster has no GPUs")
    if not use_gpu:
        cfg.check_cpu_compatible()
    need = s.worker_resources(use_gpu)
    for res, per in need.items():
        have = float(resources.get(res, 0.0))
        if per * s.num_workers > have + 1e-9:
            fit = int(have // per) if per else 0
            raise ConfigError(
                f"scaling.num_workers: {s.num_workers} workers x {per:g} {res} need "
                f"{per * s.num_workers:g} {res}, the cluster has {have:g} (at most {fit} fit); "
                f"lower scaling.num_workers or scaling.{'cpus' if res == 'CPU' else 'gpus'}_per_worker"
            )
    return use_gpu
