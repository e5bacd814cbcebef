"""Submit a whisper-tune command as a Ray job, and follow it to its end.

Why: once one machine is not enough, the tuning run has to go to a Ray cluster (KubeRay,
``ray up``, a managed Ray). The Ray Jobs API is the supported way to do that from a laptop or
CI: the driver runs *on* the cluster, so the run survives the client disconnecting, and Ray
restarts failed training workers from the last checkpoint. This module builds what a job is:

- the entrypoint: ``python -m whisper_tune.cli COMMAND ...``, preceded by a dependency
  preflight (``whisper_tune.cluster.preflight``) so a cluster that lacks the project's
  dependencies fails at once with advice, not with a bare ``ModuleNotFoundError``;
- the runtime_env: the project's code travels with the job (``py_modules`` = the
  ``whisper_tune`` package the client runs, plus a ``working_dir`` with the configs), so the
  cluster needs only the dependencies (its image, or ``--pip``), not a release of
  whisper-tune; environment variables are passed *by name* (``--env-var HF_TOKEN``): the
  value is read from the client's environment and never printed or logged;
- following: ``submit`` streams the logs and maps the job's status to an exit code, so it
  composes in scripts/CI.

Exit codes: 0 succeeded, 1 failed, 3 stopped, 2 usage/user error (bad address, auth refused).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from whisper_tune.cluster.client import jobs_user_error
from whisper_tune.errors import UserError

__all__ = [
    "DEFAULT_EXCLUDES",
    "EXIT_FAILED",
    "EXIT_STOPPED",
    "EXIT_SUCCEEDED",
    "EXIT_USAGE",
    "PREFLIGHT_MODULE",
    "SubmitOptions",
    "build_entrypoint",
    "build_runtime_env",
    "exit_code_for_status",
    "follow_job",
    "redact_runtime_env",
    "submit_job",
]

log = logging.getLogger(__name__)

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git",
    ".venv",
    "**/__pycache__",
    "*.safetensors",
    "*.bin",
    # Run artefacts, not the folder name "runs": Ray applies these patterns to py_modules too, and
    # the package's own ``whisper_tune/runs/`` must travel (a job without it fails to import).
    "**/checkpoint_*/",
    "**/encoder_cache/",
    "*.npy",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)
"""Never uploaded with ``working_dir`` (Ray also honours ``.gitignore`` / ``.rayignore``)."""

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3

PREFLIGHT_MODULE = "whisper_tune.cluster.preflight"
"""Run by every entrypoint before the command (stdlib only: it runs where deps may be missing)."""


def build_entrypoint(command: Sequence[str]) -> str:
    """``train --config x.yaml`` -> ``python -m whisper_tune.cli train --config x.yaml`` (shell-quoted).

    The command is preceded by ``python -m whisper_tune.cluster.preflight train &&``: Ray runs the
    entrypoint in a shell, so a cluster without the project's dependencies ends the job there,
    with a message saying what is missing and how to install it (``--pip`` or the image).
    """
    cmd = list(command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if cmd and cmd[0] == "whisper-tune":
        cmd = cmd[1:]
    if not cmd:
        raise UserError(
            "submit: nothing to run; usage: whisper-tune submit --address URL -- train --config X.yaml"
        )
    if cmd[0] in ("submit", "job"):
        raise UserError(f"submit: '{cmd[0]}' cannot run inside a job")
    if cmd[0] == "train" and not any(a.startswith("run.ray_address=") for a in cmd):
        # inside a job RAY_ADDRESS names the cluster; "auto" makes train join it instead of
        # starting a private local Ray on the head node
        cmd.append("run.ray_address=auto")
    name = next((a for a in cmd if not a.startswith("-")), "")  # the subcommand, past global flags
    preflight = shlex.join(["python", "-m", PREFLIGHT_MODULE, name])
    return f"{preflight} && {shlex.join(['python', '-m', 'whisper_tune.cli', *cmd])}"


@dataclass
class SubmitOptions:
    """What ``whisper-tune submit`` sends. ``env_vars`` are names; values come from ``environ``."""

    command: list[str]
    working_dir: str | None = "."
    env_vars: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    include_package: bool = True
    excludes: list[str] = field(default_factory=list)
    extra_runtime_env: dict[str, Any] = field(default_factory=dict)
    submission_id: str | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None


def _package_dir() -> str:
    import whisper_tune

    return str(Path(whisper_tune.__file__).resolve().parent)


def _pip_list(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        p = Path(v)
        if p.is_file() and (p.suffix == ".txt" or p.name.startswith("requirements")):
            for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if line.startswith("-"):
                    raise UserError(f"{p}:{lineno}: pip options ({line!r}) are not supported in --pip files")
                if line:
                    out.append(line)
        else:
            out.append(v)
    return out


def build_runtime_env(opts: SubmitOptions, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The job's runtime_env: user extras, then working_dir/py_modules/env_vars/pip on top.

    Env var *names* that are missing from ``environ`` raise UserError (naming the variable, not
    showing any value). Names with ``=`` are refused: a value on a command line leaks into
    shell history and ``ps``.
    """
    environ = os.environ if environ is None else environ
    rt: dict[str, Any] = dict(opts.extra_runtime_env)
    if opts.working_dir is not None:
        wd = Path(opts.working_dir).expanduser().resolve()
        if not wd.is_dir():
            raise UserError(f"--working-dir {opts.working_dir}: not a directory")
        rt["working_dir"] = str(wd)
        rt["excludes"] = sorted(set(rt.get("excludes", [])) | set(DEFAULT_EXCLUDES) | set(opts.excludes))
    if opts.include_package:
        mods = list(rt.get("py_modules", []))
        pkg = _package_dir()
        if pkg not in mods:
            mods.append(pkg)
        rt["py_modules"] = mods
    if opts.env_vars:
        env_vars = dict(rt.get("env_vars", {}))
        for name in opts.env_vars:
            if "=" in name:
                raise UserError(
                    f"--env-var {name.split('=', 1)[0]}=...: pass only the NAME; export the value in "
                    "your shell (values on a command line leak into history and ps)"
                )
            if name not in environ:
                raise UserError(f"--env-var {name}: not set in this environment")
            env_vars[name] = environ[name]
        rt["env_vars"] = env_vars
    if opts.pip:
        rt["pip"] = _pip_list(opts.pip)
    # `train` calls ray.init(runtime_env={"env_vars": {HF_HUB_OFFLINE...}}) to reach its workers;
    # inside a job Ray refuses that as a conflict with the job's runtime_env unless told to merge
    env_vars = dict(rt.get("env_vars", {}))
    env_vars.setdefault("RAY_OVERRIDE_JOB_RUNTIME_ENV", "1")
    rt["env_vars"] = env_vars
    return rt


def redact_runtime_env(rt: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy safe to print: env var values replaced by ``***``."""
    out = dict(rt or {})
    if isinstance(out.get("env_vars"), Mapping):
        out["env_vars"] = dict.fromkeys(out["env_vars"], "***")
    return out


def submit_job(client: Any, opts: SubmitOptions, environ: Mapping[str, str] | None = None) -> str:
    """Submit; returns the submission id. Logs the runtime_env with env var values redacted."""
    entrypoint = build_entrypoint(opts.command)
    rt = build_runtime_env(opts, environ)
    log.info("entrypoint: %s", entrypoint)
    log.info("runtime_env: %s", json.dumps(redact_runtime_env(rt), sort_keys=True))
    kwargs: dict[str, Any] = {"entrypoint": entrypoint, "runtime_env": rt}
    if opts.submission_id:
        kwargs["submission_id"] = opts.submission_id
    if opts.entrypoint_num_cpus is not None:
        kwargs["entrypoint_num_cpus"] = opts.entrypoint_num_cpus
    if opts.entrypoint_num_gpus is not None:
        kwargs["entrypoint_num_gpus"] = opts.entrypoint_num_gpus
    try:
        return str(client.submit_job(**kwargs))
    except Exception as exc:
        raise jobs_user_error("job submission refused", exc) from None


def exit_code_for_status(status: Any) -> int:
    s = str(status)
    return {"SUCCEEDED": EXIT_SUCCEEDED, "STOPPED": EXIT_STOPPED}.get(s, EXIT_FAILED)


def follow_job(client: Any, job_id: str, out: TextIO | None = None, *, settle_s: float = 120.0) -> str:
    """Stream the job's logs to ``out`` until it ends; return its terminal status string."""
    out = sys.stdout if out is None else out

    async def _tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    try:
        asyncio.run(_tail())
    except Exception as exc:  # websocket dropped (RuntimeError/aiohttp errors): fall back to polling
        log.warning("log stream for %s ended early (%s); polling status", job_id, exc)
    deadline = time.monotonic() + settle_s
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal() or time.monotonic() > deadline:
            return str(status)
        time.sleep(1.0)
