"""Launch a fine-tuning job: validate, prepare the run dir, run Ray Train, export the best.

Why: everything that can fail cheaply fails here, before a single worker starts — the
config (types, combinations), the placement (``scaling.num_workers`` against the
cluster's CPUs/GPUs, because Ray would otherwise wait for resources forever) and the
data (a set with no usable rows raises with the data report). Features are computed
once here into the run's feature cache, so workers only read them.

Resuming is by name (Train V2 semantics): the same ``RunConfig(storage_path, name)``
restores Ray's checkpoint list and the train function resumes from the latest
checkpoint. An existing run is never overwritten: its config is kept as
``config.<time>.yaml`` and ``run.new_run: true`` picks a fresh suffixed name instead.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_tune import console, storage
from whisper_tune.config import dump_yaml, load_yaml, to_dict
from whisper_tune.localray import LocalRayOptions, start_local_ray
from whisper_tune.runs import SELECT_SCORE, Checkpoint, RunDir, best_of, export_best, pull_run, push_run
from whisper_tune.train import run_files
from whisper_tune.train.config import JobConfig, check_placement
from whisper_tune.train.finalize import finalize_export

__all__ = ["TrainOutcome", "launch", "prepare_run_dir"]

log = logging.getLogger(__name__)

_ALPHA_SCORED = "alpha %.2f: guard WER %.2f %% (limit %.2f %%)%s"  # guard_select's line
_FORWARDED_ENV = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HOME",
    "WHISPER_TUNE_CACHE",
    "TOKENIZERS_PARALLELISM",
    "DS_ACCELERATOR",
)


@dataclass
class TrainOutcome:
    """What a finished run produced."""

    name: str
    run_dir: Path
    resumed: bool
    global_step: int
    best_checkpoint: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)  # reported with the best checkpoint
    best_dir: Path | None = None
    wall_s: float = 0.0
    selection: dict[str, Any] | None = None  # how best/ was chosen (train/finalize.py)

    @property
    def best_eval_wer(self) -> float | None:
        v = self.metrics.get("eval_wer")
        return float(v) if isinstance(v, (int, float)) else None


def _storage_root(cfg: JobConfig) -> str:
    s = cfg.run.storage_path
    return s if "://" in s else str(Path(s).expanduser().resolve())


def prepare_run_dir(cfg: JobConfig, *, default_name: str = "run") -> tuple[Path, bool]:
    """Pick the run name (filled into ``cfg.run.name``), create the dir, write config.yaml.

    Returns ``(run_dir, resumed)``; an existing run is resumed unless ``run.new_run``.
    """
    root = Path(_storage_root(cfg))
    if storage.is_uri(cfg.run.storage_path):  # remote: a local mirror of the run's small files
        root = storage.staging_dir(cfg.run.storage_path)
        if cfg.run.name and not cfg.run.new_run:
            pull_run(storage.join(cfg.run.storage_path, cfg.run.name), root / cfg.run.name)
    name = cfg.run.name or f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = root / name
    if run_dir.exists() and cfg.run.new_run:
        n = 2
        while (root / f"{name}-{n}").exists():
            n += 1
        name = f"{name}-{n}"
        run_dir = root / name
    cfg.run.name = name
    resumed = run_dir.exists() and any(run_dir.iterdir())
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / RunDir.CONFIG_FILE
    if cfg_path.is_file():
        old = load_yaml(cfg_path)
        if old != to_dict(cfg):
            keep = run_dir / f"config.{time.strftime('%Y%m%d-%H%M%S')}.yaml"
            cfg_path.rename(keep)
            log.warning("run %s: config changed on resume; previous one kept as %s", name, keep.name)
    dump_yaml(
        cfg, cfg_path, header=f"whisper-tune run {name}: resolved config (whisper-tune train --config ...)"
    )
    return run_dir, resumed


def _local_resources() -> dict[str, float]:
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def _init_ray(cfg: JobConfig) -> tuple[bool, dict[str, float]]:
    """Start or connect Ray; returns (started_here, cluster resources)."""
    import ray

    if ray.is_initialized():
        return False, dict(ray.cluster_resources())
    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    if cfg.run.ray_address:
        ray.init(address=cfg.run.ray_address, runtime_env={"env_vars": env} if env else None)
    else:
        # The dashboard (on loopback, a free port) also serves Ray's State API, which Train V2's
        # placement-group cleaner polls every second to clean up after a crashed driver. Where
        # Ray lacks the dashboard's packages, start_local_ray goes on without it (one warning).
        local = start_local_ray(
            LocalRayOptions(dashboard=True, num_cpus=os.cpu_count() or 1, logging_level=logging.WARNING)
        )
        log.info("local Ray started")  # (train.log's time stamps: where the start-up goes)
        if local.dashboard_url:
            log.info("Ray dashboard: %s", local.dashboard_url)
    return True, dict(ray.cluster_resources())


def _prepare_data(cfg: JobConfig, run_dir: Path) -> None:
    """Feature-extract train+eval once into the run's cache and write the data reports."""
    from whisper_tune.data.device_features import launcher_feature_device
    from whisper_tune.train import _deps
    from whisper_tune.train.inputs import load_data, load_guard

    processor = _deps.load_processor(cfg.model.name)
    if cfg.model.language:
        processor.tokenizer.set_prefix_tokens(language=cfg.model.language, task=cfg.model.task)
    cache = cfg.data.feature_cache or str(run_dir / "features")
    device = launcher_feature_device(cfg.scaling.use_gpu)  # log-mel on the GPU when there is one
    train, evaluation = load_data(cfg, processor, cache, feature_device=device)
    train.report.write(run_dir)
    evaluation.report.write(run_dir / "eval_data_report")
    guard = load_guard(cfg, processor, cache)  # builds the built-in guard once, before the workers
    if guard is not None:
        guard.report.write(run_dir / "guard_data_report")
    log.info(
        "data: %d train / %d eval / %s guard utterances usable",
        train.report.usable,
        evaluation.report.usable,
        guard.report.usable if guard is not None else "no",
    )


def launch(
    cfg: JobConfig,
    *,
    use_ray: bool = True,
    default_name: str = "run",
    shutdown_ray: bool | None = None,
) -> TrainOutcome:
    """Run ``cfg`` to the end (or resume it) and export its best checkpoint.

    ``use_ray=False`` runs the same train function in this process (one worker).
    ``shutdown_ray``: stop a Ray this call started (default: yes).
    """
    t0 = time.perf_counter()
    started_ray = False
    resources: dict[str, float] | None = None
    if not use_ray or not cfg.run.ray_address:
        resources = _local_resources()
        if use_ray:
            import ray

            if ray.is_initialized():  # a caller's Ray (tests, notebooks): count what it has
                resources = dict(ray.cluster_resources())
        if not use_ray and cfg.scaling.num_workers > 1:
            log.warning(
                "--no-ray: running 1 worker in this process (scaling.num_workers=%d ignored)",
                cfg.scaling.num_workers,
            )
            cfg.scaling.num_workers = 1
        use_gpu = check_placement(cfg, resources)
    run_dir, resumed = prepare_run_dir(cfg, default_name=default_name)
    if (session := console.current_session()) is not None:
        session.run_dir_known(run_dir)  # `whisper-tune train`: its log lives in the run dir
    run = RunDir(run_dir)
    shown = console.stage("training", unit="steps")
    shown.update(0, note="preparing data and Ray")
    run.write_status("preparing", started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    # A local Ray run prepares the data in a thread while Ray and its workers start (and load
    # the model); the workers wait for the data's marker before they read it.
    overlap = use_ray and not cfg.run.ray_address and not storage.is_uri(cfg.run.storage_path)
    try:
        data = _start_data(cfg, run_dir, overlap)
        if use_ray:
            started_ray, cluster = _init_ray(cfg)
            use_gpu = check_placement(cfg, cluster)
        if data is not None and data.done():
            data.result()  # failed while Ray started: stop before any worker does
        loop_config = {
            "job": to_dict(cfg),
            "run_dir": str(run_dir),
            "hf_output_dir": str(
                Path(tempfile.gettempdir()) / "whisper-tune" / f"{cfg.run.name}-{uuid.uuid4().hex[:8]}"
            ),
            "use_ray": use_ray,
            "use_gpu": use_gpu,
            "wait_for_data": data is not None,
        }
        run.write_status("running", resumed=resumed, use_ray=use_ray)
        # imported here, not at the top: transformers' import is then off the CLI's start-up
        # path (the data thread imports it while Ray starts)
        from whisper_tune.train.progress import follow_progress

        with follow_progress(run_dir, shown):
            if use_ray:
                outcome = _fit_ray(cfg, loop_config, run_dir, resumed, use_gpu)
                log.info("Ray Train finished at step %d", outcome.global_step)
            else:
                from whisper_tune.train.train_func import run_worker

                res = run_worker(loop_config)
                best = run.best_checkpoint()
                outcome = TrainOutcome(
                    cfg.run.name, run_dir, resumed, res["global_step"], Path(best.path), best.metrics
                )
        if data is not None:
            data.result()  # the data's error, if any (the workers then stopped without training)
    except BaseException as exc:
        shown.close("failed")
        run.write_status("failed", error=f"{type(exc).__name__}: {exc}")
        _push_remote(cfg, run_dir)
        _stop_ray(started_ray, shutdown_ray)
        raise
    try:  # best/ is written before Ray's shutdown, which takes seconds and produces nothing
        return _finish(cfg, run_dir, shown, outcome, t0)
    finally:
        _stop_ray(started_ray, shutdown_ray)


def _start_data(cfg: JobConfig, run_dir: Path, overlap: bool) -> Future[None] | None:
    """Prepare the data now (``overlap`` False: returns None) or in a thread, marking its end.

    A daemon thread: a Ctrl-C of the launcher must not wait for the data to finish.
    """
    marker = run_dir / run_files.DATA_READY_FILE
    marker.unlink(missing_ok=True)  # a resumed run's marker is from its last launch
    if not overlap:
        _prepare_data(cfg, run_dir)
        return None

    done: Future[None] = Future()

    def prepare() -> None:
        try:
            _prepare_data(cfg, run_dir)
        except BaseException as exc:
            run_files.mark_data_ready(run_dir, error=f"{type(exc).__name__}: {exc}")
            done.set_exception(exc)
            return
        run_files.mark_data_ready(run_dir)
        done.set_result(None)

    threading.Thread(target=prepare, name="whisper-tune-data", daemon=True).start()
    return done


def _stop_ray(started_ray: bool, shutdown_ray: bool | None) -> None:
    if started_ray and shutdown_ray is not False:
        import ray

        ray.shutdown()


def _finish(cfg: JobConfig, run_dir: Path, shown: Any, outcome: TrainOutcome, t0: float) -> TrainOutcome:
    """Export ``best/`` (guard check, WiSE-FT mix, CTranslate2) and write the final status."""
    run = RunDir(run_dir)
    shown.close(f"best checkpoint eval WER {console.format_pct(outcome.best_eval_wer)}")
    selection = None
    if cfg.run.export_best and outcome.best_checkpoint is not None:
        shown = console.stage("export (guard check, WiSE-FT mix, CTranslate2)", unit="mixes")
        outcome.best_dir = export_best(
            run_dir, checkpoint=outcome.best_checkpoint, ct2=False, base_model=cfg.model.name
        )
        # the guard bound, and the WiSE-FT mix when no checkpoint met it (before the CT2 copy);
        # the bar counts the mixing ratios scored (guard_select logs one line per ratio)
        with console.progress_from_log(
            shown, "whisper_tune.train.guard_select", _ALPHA_SCORED, total=len(cfg.run.interpolation_alphas)
        ):
            selection = finalize_export(cfg, run_dir, outcome.best_dir, outcome.metrics)
        outcome.selection = selection.to_dict()
        if cfg.run.ct2:
            from whisper_tune.models import export_ct2

            export_ct2(
                str(outcome.best_dir), str(outcome.best_dir / "ct2"), quantization=cfg.run.ct2_quantization
            )
        shown.close(f"eval WER {console.format_pct(selection.eval_wer)}, alpha {selection.alpha:g}")
    outcome.wall_s = time.perf_counter() - t0
    run.write_status(
        "finished",
        global_step=outcome.global_step,
        best_checkpoint=str(outcome.best_checkpoint) if outcome.best_checkpoint else None,
        best_eval_wer=selection.eval_wer if selection else outcome.best_eval_wer,
        best_guard_wer=selection.guard_wer if selection else outcome.metrics.get("guard_wer"),
        base_guard_wer=selection.base_guard_wer if selection else outcome.metrics.get("base_guard_wer"),
        interpolation_alpha=selection.alpha if selection else None,
        selection_warning=selection.warning if selection else None,
        wall_s=round(outcome.wall_s, 1),
    )
    _push_remote(cfg, run_dir)
    return outcome


def _push_remote(cfg: JobConfig, run_dir: Path) -> None:
    """Remote storage: upload the local mirror's small files and best/ next to Ray's checkpoints."""
    if storage.is_uri(cfg.run.storage_path):
        push_run(run_dir, storage.join(cfg.run.storage_path, run_dir.name))


def _fit_ray(
    cfg: JobConfig, loop_config: dict[str, Any], run_dir: Path, resumed: bool, use_gpu: bool
) -> TrainOutcome:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from whisper_tune.train.train_func import train_func

    env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    trainer = TorchTrainer(
        train_func,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=cfg.scaling.num_workers,
            use_gpu=use_gpu,
            resources_per_worker=cfg.scaling.worker_resources(use_gpu),
        ),
        run_config=RunConfig(
            name=cfg.run.name,
            **(
                storage.ray_storage_kwargs(cfg.run.storage_path)
                if storage.is_uri(cfg.run.storage_path)
                else {"storage_path": str(run_dir.parent)}
            ),
            checkpoint_config=CheckpointConfig(
                num_to_keep=cfg.run.num_to_keep,
                # eval_wer, +1 when the real-speech guard regressed (train/guard.py)
                checkpoint_score_attribute=SELECT_SCORE,
                checkpoint_score_order="min",
            ),
            failure_config=FailureConfig(max_failures=cfg.run.max_failures),
            worker_runtime_env={"env_vars": env} if env else None,  # type: ignore[call-arg]
        ),
    )
    result = trainer.fit()
    best_path: Path | None = None
    metrics: dict[str, Any] = {}
    # Ray keeps the checkpoints (paths on the storage filesystem) and their reported metrics
    reported = [
        Checkpoint(c.path, int(m.get("step", 0) or 0), dict(m)) for c, m in (result.best_checkpoints or [])
    ]
    scored = [c for c in reported if c.eval_wer is not None]
    if scored:
        best = best_of(scored)
        metrics = best.metrics
        best_path = storage.fetch_fs_dir(cfg.run.storage_path, str(best.path), run_dir)
    elif result.checkpoint is not None:
        best_path = storage.fetch_fs_dir(cfg.run.storage_path, result.checkpoint.path, run_dir)
        metrics = dict(result.metrics or {})
    step = int((result.metrics or {}).get("step", metrics.get("step", 0)) or 0)
    return TrainOutcome(cfg.run.name, run_dir, resumed, step, best_path, dict(metrics))
