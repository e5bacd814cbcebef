"""DeepSpeed presets shipped as JSON files, resolved for the HF Trainer.

Why: the seed tunes with a DeepSpeed config; keeping the presets as data files (not
Python dicts) lets users copy one, edit it and pass its path as ``train.deepspeed``.
Every size-like field is ``"auto"`` so the HF integration fills it from the
TrainingArguments (batch size, accumulation, clipping, precision, bucket sizes) and the
same file works for any model size or worker count. ``"none"`` means plain DDP.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from whisper_tune.config import ConfigError

__all__ = ["PRESET_DIR", "list_presets", "load_deepspeed_config", "preset_path"]

PRESET_DIR = Path(str(resources.files("whisper_tune.train") / "deepspeed_presets"))


def list_presets() -> list[str]:
    """Names of the shipped presets (without ``none``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def preset_path(name: str) -> Path:
    """Path of a shipped preset file; ConfigError naming ``train.deepspeed`` if unknown."""
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"train.deepspeed: no preset {name!r} (have: none, {', '.join(list_presets())})")
    return path


def load_deepspeed_config(spec: str) -> dict[str, Any] | None:
    """``"none"`` -> None (DDP); a preset name or a JSON path -> the config dict."""
    if spec == "none":
        return None
    path = Path(spec) if spec.endswith(".json") else preset_path(spec)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"train.deepspeed: cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"train.deepspeed: {path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or "zero_optimization" not in data:
        raise ConfigError(f"train.deepspeed: {path} has no zero_optimization section")
    return data
