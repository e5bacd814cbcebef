"""Unit tests for whisper_tune.cluster.preflight: a job on a Python without the deps fails with advice.

The real case is reproduced: the entrypoint ``build_entrypoint`` makes is run by a shell (as Ray
runs it) with ``python`` = a fresh venv that has none of the project's dependencies and the
package on ``PYTHONPATH`` (as ``py_modules`` puts it there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import whisper_tune
from whisper_tune.cluster import preflight
from whisper_tune.cluster.submit import PREFLIGHT_MODULE, build_entrypoint

PKG_PARENT = str(Path(whisper_tune.__file__).resolve().parent.parent)
PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def _run(entrypoint: str, python_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{python_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = PKG_PARENT
    return subprocess.run(
        entrypoint, shell=True, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_required_modules_per_command() -> None:
    assert preflight.required_modules("cluster-info") == preflight.STARTUP
    assert "soundfile" in preflight.required_modules("fetch")
    train = preflight.required_modules("train")
    assert {"torch", "transformers", "accelerate", "peft"} <= set(train)
    assert {"torch", "transformers"} <= set(preflight.required_modules("evaluate"))
    assert {"torch", "transformers"} <= set(preflight.required_modules(None))  # unknown: the ML set


def test_all_present_here_passes_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("train", "evaluate", "serve", "cluster-info", "demo"):
        assert preflight.main([command]) == 0
    assert capsys.readouterr().err == ""


def test_missing_module_named_with_advice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile -> ImportError
    monkeypatch.setitem(sys.modules, "peft", None)  # find_spec -> None
    assert preflight.missing_modules(("numpy", "soundfile", "peft")) == {
        "soundfile": "not installed",
        "peft": "not installed",
    }
    assert preflight.main(["train"]) == preflight.EXIT_MISSING_DEPS
    err = capsys.readouterr().err
    assert "`whisper-tune train` needs" in err and "soundfile: not installed" in err and "peft" in err
    assert "--pip 'soundfile==0.14.0'" in err and "--pip 'peft==0.21.2'" in err
    assert "runtime-env" in err and "image" in err
    assert "Traceback" not in err


def test_pip_names_match_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pinned = {d.split("#", 1)[0].strip() for d in deps}
    assert set(preflight.PIP_NAMES.values()) <= pinned, set(preflight.PIP_NAMES.values()) - pinned
    every = {m for mods in preflight.MODULES.values() for m in mods} | set(preflight.STARTUP)
    assert every <= set(preflight.PIP_NAMES)


def test_entrypoint_on_a_python_without_deps_fails_with_advice(tmp_path: Path) -> None:
    bare = tmp_path / "bare-venv"
    venv.create(bare, with_pip=False)  # the interpreter a bare cluster image has: no numpy, no soundfile
    entrypoint = build_entrypoint(["train", "--config", "x.yaml"])
    assert entrypoint.startswith(f"python -m {PREFLIGHT_MODULE} train && ")
    r = _run(entrypoint, bare / "bin", tmp_path)
    assert r.returncode == preflight.EXIT_MISSING_DEPS, r.stdout + r.stderr
    assert "whisper-tune preflight" in r.stderr and "soundfile: not installed" in r.stderr
    assert "numpy: not installed" in r.stderr and "--pip" in r.stderr
    assert "Traceback" not in r.stderr and "ModuleNotFoundError" not in r.stderr  # the CLI never started


def test_entrypoint_runs_the_command_when_deps_are_there(tmp_path: Path) -> None:
    entrypoint = build_entrypoint(["fetch", str(tmp_path)])  # a local path: printed as is
    r = _run(entrypoint, Path(sys.executable).parent, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path)
    assert "preflight" not in r.stderr
