"""The cluster's Jobs address and a connected ``JobSubmissionClient``.

Why: the one thing every ``submit`` / ``job ...`` command needs first is a client that
talks to the right cluster with the right credentials, and fails with a message a user can
act on (bad address, auth refused) instead of a traceback that may quote the token. The
address comes from ``--address``, ``RAY_API_SERVER_ADDRESS`` or ``RAY_ADDRESS``; ``ray://``
(Ray Client) is refused because Jobs talk HTTP; external-module addresses such as
``vertex_ray://...`` are passed to Ray untouched.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from whisper_tune.cluster.auth import AuthToken, find_auth_token
from whisper_tune.errors import UserError

__all__ = ["jobs_user_error", "make_client", "resolve_address"]

log = logging.getLogger(__name__)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_address(address: str | None, env: Mapping[str, str] | None = None) -> str:
    """The dashboard/Jobs URL: ``--address``, else ``RAY_API_SERVER_ADDRESS``, else ``RAY_ADDRESS``.

    ``host:port`` gets ``http://``. ``ray://`` (Ray Client) is refused: Jobs talk HTTP.
    """
    env = os.environ if env is None else env
    addr = address or env.get("RAY_API_SERVER_ADDRESS") or env.get("RAY_ADDRESS")
    if not addr:
        raise UserError(
            "no Ray cluster address: pass --address http://HOST:8265 (the dashboard/Jobs port) "
            "or set RAY_API_SERVER_ADDRESS"
        )
    if addr.startswith("ray://"):
        raise UserError(
            f"--address {addr}: use the dashboard URL (http://HOST:8265), not a Ray Client address"
        )
    if "://" not in addr:
        addr = "http://" + addr
    parsed = urlparse(addr)
    scheme = addr.split("://", 1)[0].lower()  # urlparse drops schemes with "_" (vertex_ray)
    if scheme not in ("http", "https"):
        if scheme.replace("_", "").isalnum() and scheme not in ("ftp", "file", "s3", "gs"):
            # an external module address, e.g. vertex_ray://... (Ray on Vertex AI): Ray imports the
            # module named by the scheme to find the Jobs endpoint and its credentials
            return addr
        raise UserError(f"--address {addr}: expected http(s)://HOST:PORT")
    if not parsed.hostname:
        raise UserError(f"--address {addr}: expected http(s)://HOST:PORT")
    return addr.rstrip("/")


def make_client(address: str | None, *, token_file: str | None = None, verify: bool | str = True) -> Any:
    """A connected ``JobSubmissionClient``; auth/connection problems become UserError (no secrets)."""
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    token = find_auth_token(token_file)
    headers: dict[str, str] = {}
    if token is not None and not url.startswith(("http://", "https://")):
        token = None  # external module addresses bring their own auth
    if token is not None:
        host = urlparse(url).hostname
        if urlparse(url).scheme == "http" and not _is_loopback(host):
            log.warning(
                "sending the Ray auth token to %s over plain http; use https or a port-forward/SSH tunnel",
                host,
            )
        log.info("using Ray auth token from %s", token.source)
        headers = token.headers()
    try:
        return JobSubmissionClient(url, headers=headers, verify=verify)
    except Exception as exc:  # ConnectionError, RuntimeError, ray.exceptions.AuthenticationError
        raise jobs_user_error(f"cannot use Ray Jobs at {url}", exc, token) from None


def jobs_user_error(what: str, exc: BaseException, token: AuthToken | None = None) -> UserError:
    """A UserError for a failed Jobs call: first lines of Ray's message, token redacted, auth hint."""
    msg = str(exc).strip()
    if token is not None:
        msg = msg.replace(token.value, "***")
    first = "\n".join(msg.splitlines()[:2])
    hint = ""
    if any(w in msg for w in ("uthenticat", "Unauthorized", "Forbidden")):
        hint = (
            "\nhint: the cluster uses Ray token auth; make its token available here via RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token or --auth-token-file (never on the command line)"
        )
    return UserError(f"{what}: {first}{hint}")
