"""The real ``whisper-tune data check`` console script in a subprocess (entry point, exit codes, clean JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration


def _script() -> str:
    exe = Path(sys.executable).with_name("whisper-tune")
    return str(exe) if exe.exists() else ""


def test_data_check_subprocess(tmp_path: Path) -> None:
    exe = _script()
    if not exe:
        pytest.fail("whisper-tune console script is not installed next to the interpreter")
    t = np.arange(32000) / 16000
    sf.write(str(tmp_path / "good.wav"), (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    rows = [
        {"audio_filepath": "good.wav", "text": "Freeze my card."},
        {"audio_filepath": "bad.wav", "text": "broken"},
        {"audio_filepath": "../../etc/passwd", "text": "x"},
    ]
    m = tmp_path / "train.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = subprocess.run(
        [exe, "data", "check", str(m), "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["usable"] == 1 and d["total"] == 4
    assert {r: e["count"] for r, e in d["skipped"].items()} == {
        "unreadable_audio": 1,
        "outside_root": 1,
        "bad_json": 1,
    }
    assert d["skipped"]["bad_json"]["examples"][0].startswith(f"{m}:4: ")
