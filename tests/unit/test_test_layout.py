"""Test files have unique basenames: pytest imports them by basename (no packages under tests/).

Two ``test_limits.py`` in different folders made collection fail with "import file mismatch"
on a fresh clone (and pass in a checkout whose ``__pycache__`` happened to hold the other one).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name.startswith("test_") or path.name.startswith("wt_"):
            seen[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"test modules with the same basename: {clashes}"
