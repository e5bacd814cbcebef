"""``submit``'s up-front check of the cluster's Python: a tiny probe job before the real one.

Why: every job's entrypoint starts with the dependency preflight (``cluster/preflight.py``),
but by then the real job exists: it may have reserved its driver's CPUs/GPUs, and its advice
sits in a job log the user has to go and read. ``submit`` therefore first runs the preflight
alone as a job of its own, with exactly the runtime_env the real job will get (same
``working_dir``, ``py_modules``, ``pip``, env vars: Ray caches uploaded packages and built pip
environments by content, so the real job reuses them and the probe costs one short process).
When the cluster's Python lacks something, ``submit`` stops there, on the user's terminal,
naming every missing module and the two ways to fix it (install it on the cluster image, or
have Ray install it for the job: ``--pip`` / a runtime_env ``pip`` list), and the real job is
never submitted. ``--no-preflight`` skips the probe (the in-job preflight still runs).
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from whisper_tune.cluster.client import jobs_user_error
from whisper_tune.cluster.submit import PREFLIGHT_MODULE, SubmitOptions, build_entrypoint, build_runtime_env
from whisper_tune.errors import UserError

__all__ = [
    "ProbeResult",
    "check_cluster_env",
    "probe_entrypoint",
    "probe_failure_message",
    "require_cluster_env",
]

log = logging.getLogger(__name__)

_ADVICE_HEAD = "whisper-tune preflight:"


@dataclass(frozen=True)
class ProbeResult:
    """How the probe job ended: ``ok`` (True: all importable; None: no answer in time)."""

    job_id: str
    status: str
    ok: bool | None
    message: str = ""  # what to tell the user when not ok
    seconds: float = 0.0


def _subcommand(command: Sequence[str]) -> str:
    """The whisper-tune subcommand of ``command`` (as ``build_entrypoint`` finds it)."""
    entry = build_entrypoint(command)  # validates, strips "--" / "whisper-tune"
    words = shlex.split(entry.split(" && ", 1)[0])
    return words[3] if len(words) > 3 else ""


def probe_entrypoint(command: Sequence[str], require: Sequence[str] = ()) -> str:
    """``python -m whisper_tune.cluster.preflight train [--require MOD ...]``."""
    args = ["python", "-m", PREFLIGHT_MODULE, _subcommand(command)]
    for mod in require:
        args += ["--require", mod]
    return shlex.join(args)


def probe_failure_message(logs: str, job_message: str, include_package: bool) -> str:
    """What a failed probe means, from its log and Ray's job message."""
    lines = logs.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(_ADVICE_HEAD)]
    if starts:  # the preflight's own advice: what is missing, and the two fixes
        return "\n".join(lines[starts[-1] :]).strip()
    if "No module named whisper_tune" in logs or "No module named 'whisper_tune'" in logs:
        how = (
            "submit was given --no-package, so the job uses the cluster's own installation"
            if not include_package
            else "the uploaded package did not reach the job's Python"
        )
        return (
            "whisper-tune preflight: the cluster's Python cannot import whisper_tune itself "
            f"({how}). Either install whisper-tune (and its dependencies) into the cluster image, "
            "or submit without --no-package (the package then travels with the job) and add its "
            "dependencies with --pip (or a `pip:` list in --runtime-env YAML)."
        )
    detail = "\n".join((job_message or logs).strip().splitlines()[-12:])
    if "runtime_env" in job_message or "RuntimeEnvSetupError" in logs + job_message:
        return (
            "whisper-tune preflight: Ray could not set up the job's runtime_env (e.g. a --pip "
            f"requirement that does not install there):\n{detail}\nFix the --pip / --runtime-env "
            "entries, or install the dependencies into the cluster image and drop them."
        )
    return f"whisper-tune preflight: the probe job failed before it could check anything:\n{detail}"


def check_cluster_env(
    client: Any,
    opts: SubmitOptions,
    environ: Mapping[str, str] | None = None,
    *,
    require: Sequence[str] = (),
    timeout_s: float = 900.0,
    poll_s: float = 1.0,
) -> ProbeResult:
    """Run the preflight as a job with ``opts``' runtime_env; wait for it (``timeout_s``).

    Returns the result; the caller decides (``submit`` raises :class:`UserError` on ``ok is
    False`` and goes on, with a warning, when the probe got no answer in time).
    """
    t0 = time.monotonic()
    kwargs: dict[str, Any] = {
        "entrypoint": probe_entrypoint(opts.command, require),
        "runtime_env": build_runtime_env(opts, environ),
        "metadata": {"whisper_tune": "preflight"},
    }
    if opts.submission_id:
        kwargs["submission_id"] = f"{opts.submission_id}-preflight"
    try:
        job_id = str(client.submit_job(**kwargs))
    except Exception as exc:
        raise jobs_user_error("preflight job refused", exc) from None
    log.info("preflight job %s: checking the cluster's Python", job_id)
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            break
        if time.monotonic() - t0 > timeout_s:
            try:
                client.stop_job(job_id)
            except Exception as exc:  # best effort: it is a probe
                log.debug("stopping preflight job %s: %s", job_id, exc)
            return ProbeResult(job_id, str(status), None, f"no answer within {timeout_s:.0f} s")
        time.sleep(poll_s)
    seconds = time.monotonic() - t0
    if str(status) == "SUCCEEDED":
        return ProbeResult(job_id, "SUCCEEDED", True, seconds=seconds)
    try:
        logs = str(client.get_job_logs(job_id) or "")
    except Exception:  # a job that never started has no logs
        logs = ""
    try:
        message = str(getattr(client.get_job_info(job_id), "message", "") or "")
    except Exception:
        message = ""
    text = probe_failure_message(logs, message, opts.include_package)
    return ProbeResult(job_id, str(status), False, text, seconds)


def require_cluster_env(client: Any, opts: SubmitOptions, **kw: Any) -> ProbeResult:
    """:func:`check_cluster_env`, raising :class:`UserError` (the advice) when something is missing."""
    res = check_cluster_env(client, opts, **kw)
    if res.ok is False:
        raise UserError(
            f"{res.message}\n(preflight job {res.job_id}: {res.status}; the job was not submitted)"
        )
    if res.ok is None:
        log.warning("preflight job %s: %s; submitting anyway", res.job_id, res.message)
    return res
