"""Unit tests for whisper_tune.cluster.auth: where the Ray token is found, and that it is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_tune.cluster import auth
from whisper_tune.errors import UserError

TOKEN = "a" * 64


def test_token_lookup_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-default-file\n")
    path_file = tmp_path / "tok"
    path_file.write_text("from-token-path\n")
    explicit = tmp_path / "explicit"
    explicit.write_text(f"{TOKEN}\n")

    env = {"HOME": str(home)}
    t = auth.find_auth_token(env=env)
    assert t is not None and t.value == "from-default-file" and "default token file" in t.source
    t = auth.find_auth_token(env={**env, "RAY_AUTH_TOKEN_PATH": str(path_file)})
    assert t is not None and t.value == "from-token-path" and t.source.startswith("RAY_AUTH_TOKEN_PATH")
    t = auth.find_auth_token(
        env={**env, "RAY_AUTH_TOKEN_PATH": str(path_file), "RAY_AUTH_TOKEN": " env-tok "}
    )
    assert t is not None and t.value == "env-tok" and t.source == "RAY_AUTH_TOKEN"
    assert auth.find_auth_token(env={**env, "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "x"}) is None
    t = auth.find_auth_token(explicit, env={**env, "RAY_AUTH_MODE": "disabled"})
    assert t is not None and t.value == TOKEN
    assert auth.find_auth_token(env={"HOME": str(tmp_path / "nohome")}) is None


def test_token_never_in_repr_and_bad_files(tmp_path: Path) -> None:
    t = auth.AuthToken(TOKEN, "RAY_AUTH_TOKEN")
    assert TOKEN not in repr(t) and TOKEN not in str(t)
    assert t.headers() == {"Authorization": f"Bearer {TOKEN}"}
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        auth.find_auth_token(empty, env={})
    with pytest.raises(UserError, match="cannot read"):
        auth.find_auth_token(tmp_path / "missing", env={})
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH"):
        auth.find_auth_token(env={"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing"), "HOME": str(tmp_path)})
