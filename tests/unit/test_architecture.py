"""The architecture rules of ``src/whisper_tune``: layers, no import cycles, size, docstrings.

Why: these house rules are easy to break unnoticed, mostly through imports hidden inside
functions. The checker (``wt_archcheck``, which explains what counts as an import and which
edges the cycle check leaves out) parses the sources with ``ast`` and imports none of them.
The real-tree tests list every breach as ``file:line`` with the rule broken; the checker
tests prove, on trees written to ``tmp_path``, that it reports what it must and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

from wt_archcheck import (  # tests/unit is on sys.path (rootdir-relative test dirs)
    LAYERS,
    MAX_LINES,
    PACKAGE,
    REPO,
    import_cycles,
    layer_violations,
    scan,
    size_and_docstring_problems,
)


def _report(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


# --------------------------------------------------------------------------- the real tree


def test_layer_rule() -> None:
    problems = layer_violations(scan())
    assert not problems, _report(problems)


def test_no_import_cycles() -> None:
    problems = import_cycles(scan())
    assert not problems, _report(problems)


def test_modules_are_small_and_documented() -> None:
    problems = size_and_docstring_problems(scan())
    assert not problems, _report(problems)


def test_doc_mirrors_layer_table() -> None:
    """docs/architecture.md's layer table lists exactly LAYERS (``| rank | `a`, `b` | ... |``)."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    doc: dict[int, tuple[str, ...]] = {}
    for m in re.finditer(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.MULTILINE):
        doc[int(m.group(1))] = tuple(re.findall(r"`([\w.]+)`", m.group(2)))
    assert doc == LAYERS


# --------------------------------------------------------------------------- the checker itself


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, body in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return root


def test_checker_reports_upward_imports_and_cycles(tmp_path: Path) -> None:
    doc = '"""Why this module exists."""\n'
    src = _write(
        tmp_path,
        {
            "__init__.py": doc,
            "errors.py": doc,
            "storage.py": doc + "from whisper_tune.errors import X\n",  # rank 0 -> 0: fine
            "cli.py": doc + "import importlib\nAREAS = ('whisper_tune.demo', 'whisper_tune.train')\n"
            "for m in AREAS:\n    importlib.import_module(m)\n",  # 9 -> 9 (allowed), 9 -> 5
            "demo.py": doc + "def f():\n    from whisper_tune import train\n",  # 9 -> 5: fine
            "data/__init__.py": doc,
            "data/checks.py": doc + "def build():\n    from whisper_tune.models.load import m\n",  # 1 -> 2
            "data/prep.py": doc + "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from whisper_tune.scoring import s\n",  # 1 -> 1, other package
            "models/__init__.py": doc + "import importlib\n\ndef __getattr__(n):\n"
            "    return importlib.import_module(f'whisper_tune.models.{n}')\n",
            "models/load.py": doc + "from . import cache\n",
            "models/cache.py": doc + "def f():\n    from whisper_tune import runs\n",  # 2 -> 3
            "runs.py": doc + "from whisper_tune.models.load import m\n",  # closes a cycle
            "scoring/__init__.py": doc,
            "train/__init__.py": "x = 1\n" * (MAX_LINES + 1),  # too long, no docstring
            "evaluate/__init__.py": doc + "from .metrics import wer\nNAME = 1\n",
            "evaluate/metrics.py": doc + "from whisper_tune.evaluate import NAME\n",  # eager: a cycle
        },
    )
    modules = scan(src)
    layer = "\n".join(layer_violations(modules))
    assert "data/checks.py:3: whisper_tune.data.checks -> whisper_tune.models.load (function-level)" in layer
    assert "rank 1 (data) may not import rank 2 (models)" in layer
    assert "models/cache.py:3: whisper_tune.models.cache -> whisper_tune.runs (function-level)" in layer
    assert "data and scoring share rank 1" in layer and "(TYPE_CHECKING)" in layer
    assert "whisper_tune.cli -> whisper_tune.demo" not in layer
    assert "whisper_tune.storage" not in layer and "whisper_tune.demo ->" not in layer
    assert len(layer_violations(modules)) == 3, layer
    assert {i.target for i in modules["whisper_tune.cli"].imports} == {
        "whisper_tune.demo",
        "whisper_tune.train",
    }
    assert modules["whisper_tune.demo"].imports[0].target == "whisper_tune.train"

    cycles = import_cycles(modules)
    assert len(cycles) == 2, cycles
    assert cycles[0].startswith(
        "cycle among 2 modules: whisper_tune.evaluate -> whisper_tune.evaluate.metrics -> whisper_tune.evaluate"
    )
    assert cycles[1].startswith(
        "cycle among 3 modules: whisper_tune.models.cache -> whisper_tune.runs"
        " -> whisper_tune.models.load -> whisper_tune.models.cache"
    )
    assert "models/cache.py:3: whisper_tune.models.cache -> whisper_tune.runs (function-level)" in cycles[1]

    sizes = "\n".join(size_and_docstring_problems(modules))
    assert (
        f"train/__init__.py: {MAX_LINES + 1} lines" in sizes
        and "train/__init__.py: no module docstring" in sizes
    )


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    doc = '"""Why."""\n'
    src = _write(
        tmp_path,
        {
            "__init__.py": doc,
            "config.py": doc + "from whisper_tune.errors import E\n",
            "errors.py": doc,
            "data/__init__.py": doc + "from .manifest import load\n",
            "data/manifest.py": doc + "from whisper_tune import config\n",
            "train/__init__.py": doc,
            "train/run.py": doc
            + "def go():\n    import whisper_tune.data.manifest\n    from .. import data\n",
            "serve/__init__.py": doc + "def __getattr__(n):\n    from whisper_tune.serve import app\n",
            "serve/app.py": doc + "from importlib import resources\n\ndef page():\n"
            "    return resources.files('whisper_tune.serve')\n",  # its own package, lazily: no cycle
        },
    )
    modules = scan(src)
    assert [i.target for i in modules["whisper_tune.serve.app"].imports] == ["whisper_tune.serve"]
    assert layer_violations(modules) == [] and import_cycles(modules) == []
    assert {i.target for i in modules["whisper_tune.train.run"].imports} == {
        "whisper_tune.data.manifest",
        "whisper_tune.data",
    }
