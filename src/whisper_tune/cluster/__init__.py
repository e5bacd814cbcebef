"""Ray clusters: submit whisper-tune commands as Ray jobs, manage them, check the cluster.

Why a package: talking to a cluster has separate concerns that each need their own tests:
finding the auth token (``auth``), resolving the Jobs address and connecting (``client``),
building and following a job (``submit``), the dependency check every job runs first
(``preflight``), probing every node (``info``) and the CLI (``cli``). Everything here
imports only the standard library at module level; Ray is imported inside the functions,
so ``whisper-tune --help`` stays fast and ``preflight`` runs where nothing else is installed.
"""

from __future__ import annotations

from whisper_tune.cluster.auth import AuthToken, find_auth_token
from whisper_tune.cluster.client import jobs_user_error, make_client, resolve_address
from whisper_tune.cluster.info import cluster_info
from whisper_tune.cluster.submit import (
    SubmitOptions,
    build_entrypoint,
    build_runtime_env,
    exit_code_for_status,
    follow_job,
    redact_runtime_env,
    submit_job,
)

__all__ = [
    "AuthToken",
    "SubmitOptions",
    "build_entrypoint",
    "build_runtime_env",
    "cluster_info",
    "exit_code_for_status",
    "find_auth_token",
    "follow_job",
    "jobs_user_error",
    "make_client",
    "redact_runtime_env",
    "resolve_address",
    "submit_job",
]
