"""Ray auth-token discovery for the Jobs client.

Why: Ray 2.60 turns token authentication on by default (``RAY_AUTH_MODE=token``): the
dashboard/Jobs API answers 401 without the cluster's token. Users already have the token
where Ray's own CLI looks for it, so we look in the same places, in the same order:
``--auth-token-file``, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``.
The token is sent as a bearer header and never printed: ``AuthToken`` keeps its value out
of ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from whisper_tune.errors import UserError

__all__ = ["AuthToken", "find_auth_token"]


@dataclass(frozen=True)
class AuthToken:
    """A Ray auth token and where it came from. ``value`` is kept out of ``repr``."""

    value: str = field(repr=False)
    source: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


def find_auth_token(
    token_file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> AuthToken | None:
    """Find a Ray token the way Ray does: explicit file, ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``.

    ``RAY_AUTH_MODE=disabled`` means "send no token" (unless a file is passed explicitly).
    Raises UserError when an explicitly named file is missing or empty.
    """
    env = os.environ if env is None else env

    def _read(path: Path, what: str) -> AuthToken:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"{what}: cannot read Ray auth token file {path}: {exc.strerror}") from None
        if not text:
            raise UserError(f"{what}: Ray auth token file {path} is empty")
        return AuthToken(text, f"{what} ({path})")

    if token_file is not None:
        return _read(Path(token_file).expanduser(), "--auth-token-file")
    if env.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return None
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return AuthToken(env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return _read(Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser(), "RAY_AUTH_TOKEN_PATH")
    default = Path(env.get("HOME", str(Path.home()))) / ".ray" / "auth_token"
    if default.is_file() and default.read_text(encoding="utf-8").strip():
        return AuthToken(default.read_text(encoding="utf-8").strip(), f"default token file ({default})")
    return None
