"""Run first in every submitted job: are whisper-tune's dependencies importable here?

Why: ``submit`` ships the project's *code* (``py_modules``) but not its dependencies, which
must come from the cluster image or from ``--pip``. On a cluster whose Python lacks them the
job used to die with a bare ``ModuleNotFoundError: No module named 'soundfile'`` deep in a
traceback. ``build_entrypoint`` therefore runs ``python -m whisper_tune.cluster.preflight
COMMAND`` before the command itself: it names every missing module, says how to get it onto
the cluster, and exits non-zero so the job fails at once, with that advice as its log.

This module must import nothing but the standard library: it runs exactly where the
dependencies may be missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["EXIT_MISSING_DEPS", "MODULES", "PIP_NAMES", "main", "missing_modules", "required_modules"]

EXIT_MISSING_DEPS = 2

#: import name -> the requirement exactly as pyproject.toml lists it (a unit test keeps them equal)
PIP_NAMES: dict[str, str] = {
    "numpy": "numpy",
    "yaml": "pyyaml",
    "soundfile": "soundfile==0.14.0",
    "soxr": "soxr==1.1.0",
    "torch": "torch>=2.4",
    "transformers": "transformers==5.24.0",
    "jiwer": "jiwer==4.0.0",
    "accelerate": "accelerate==1.15.0",
    "peft": "peft==0.21.2",
    "fastapi": "fastapi",
    "deepspeed": "deepspeed==0.19.8",
}

#: imported (not only located) for every command: the CLI imports them when it starts, and a
#: native library they wrap (libsndfile) can be missing even when the module is installed
STARTUP: tuple[str, ...] = ("numpy", "yaml", "soundfile", "soxr")
_ML: tuple[str, ...] = ("torch", "transformers", "jiwer")

#: command -> modules it needs besides STARTUP (unknown commands get the ML set)
MODULES: dict[str, tuple[str, ...]] = {
    "cluster-info": (),
    "fetch": (),
    "runs": (),
    "train": (*_ML, "accelerate", "peft", "deepspeed"),
    "serve": (*_ML, "fastapi"),
    "demo": (*_ML, "accelerate", "peft", "deepspeed"),
}


def required_modules(command: str | None) -> tuple[str, ...]:
    """STARTUP, then what ``command`` (the whisper-tune subcommand) needs on top."""
    extra = MODULES.get(command or "", _ML)
    return STARTUP + tuple(m for m in extra if m not in STARTUP)


def missing_modules(modules: Sequence[str]) -> dict[str, str]:
    """module -> why it is unusable (``not installed`` or the import error), for those that are."""
    out: dict[str, str] = {}
    for name in modules:
        if name in STARTUP:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                out[name] = "not installed" if getattr(exc, "name", None) == name else str(exc)
            except OSError as exc:  # e.g. soundfile without libsndfile
                out[name] = str(exc)
        elif importlib.util.find_spec(name) is None:
            out[name] = "not installed"
    return out


def advice(command: str | None, missing: dict[str, str]) -> str:
    """The message a job's log shows when ``missing`` is not empty."""
    reqs = " ".join(f"--pip '{PIP_NAMES.get(m, m)}'" for m in missing)
    what = f"whisper-tune {command}" if command else "whisper-tune"
    lines = [
        f"whisper-tune preflight: this job's Python ({sys.executable}) cannot import what `{what}` needs:",
        *(f"  - {m}: {why}" for m, why in missing.items()),
        "`submit` uploads whisper-tune's code, not its dependencies. Either",
        "  - use a cluster image with whisper-tune's dependencies installed "
        "(e.g. whisper-tune itself, then submit with --no-package), or",
        f"  - let Ray install them for this job: whisper-tune submit {reqs} ... "
        "(or --pip requirements.txt, or a `pip:` list in --runtime-env YAML).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m whisper_tune.cluster.preflight [COMMAND] [--require MODULE ...]``: 0 if all is
    importable, else 2 + advice. ``--require`` adds modules of the user's own (checked by location)."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    while "--require" in args:
        at = args.index("--require")
        extra += args[at + 1 : at + 2]
        del args[at : at + 2]
    command = args[0] if args else None
    needed = required_modules(command)
    missing = missing_modules(needed + tuple(m for m in extra if m not in needed))
    if not missing:
        return 0
    print(advice(command, missing), file=sys.stderr, flush=True)
    return EXIT_MISSING_DEPS


if __name__ == "__main__":
    sys.exit(main())
