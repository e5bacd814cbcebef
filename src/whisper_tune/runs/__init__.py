"""Run directories: layout, listing, best-checkpoint selection and export.

Why: a run directory is the unit users keep, compare and ship. Everything needed to
understand or reuse a run is in it, in plain files, so listing and exporting work
without Ray (and after the cluster is gone), on a local disk or in object storage::

    <storage>/<run-name>/
        config.yaml            resolved JobConfig (config.<time>.yaml: earlier ones, on resume)
        status.json            running | finished | failed (+ times, error, best)
        data_report.{json,md}  what was usable and why the rest was not
        fast_path.json         what the training fast path chose (encoder context...)
        checkpoint_<step>/     Ray checkpoints: checkpoint/ (HF Trainer checkpoint) + metrics.json
        tensorboard/           TensorBoard events
        best/                  self-contained HF model dir of the best checkpoint (guard-admissible
                               first, then lowest eval_wer; or its mix with the base weights)
                               (+ processor, generation config, whisper_tune_config.yaml,
                               metrics.json); best/ct2/ optional CTranslate2 export
        eval/                  evaluation predictions and reports

:class:`RunDir` (``layout``) owns the layout and the one best-checkpoint rule (:func:`best_of`);
``listing`` finds runs and resolves model specs; ``export`` writes ``best/``; ``staging`` keeps
the local mirror of a remote run.
"""

from __future__ import annotations

from whisper_tune.runs.export import RemoteBest, export_best, export_best_remote, restore_full_context
from whisper_tune.runs.layout import (
    GUARD_OK,
    SCORE,
    SELECT_SCORE,
    Checkpoint,
    CheckpointInfo,
    RunDir,
    best_of,
    list_checkpoints,
    read_status,
    select_best,
    write_status,
)
from whisper_tune.runs.listing import (
    RunInfo,
    find_run,
    list_runs,
    resolve_model_spec,
    resolve_run_dir,
    run_of_model_spec,
)
from whisper_tune.runs.staging import pull_run, push_run

__all__ = [
    "GUARD_OK",
    "SCORE",
    "SELECT_SCORE",
    "Checkpoint",
    "CheckpointInfo",
    "RemoteBest",
    "RunDir",
    "RunInfo",
    "best_of",
    "export_best",
    "export_best_remote",
    "find_run",
    "list_checkpoints",
    "list_runs",
    "pull_run",
    "push_run",
    "read_status",
    "resolve_model_spec",
    "resolve_run_dir",
    "restore_full_context",
    "run_of_model_spec",
    "select_best",
    "write_status",
]
