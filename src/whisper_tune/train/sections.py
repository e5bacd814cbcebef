"""The job config's sections about scoring and reporting (``eval:``, ``report:``).

Why: they are read by evaluation as much as by training (``whisper-tune compare`` reads
``report.redact`` from the tuned run's ``config.yaml``), and ``train/config.py`` holds the
training sections; keeping these two apart keeps both modules small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["EvalSection", "ReportSection"]


@dataclass
class EvalSection:
    """How eval WER (the checkpoint score) is computed during training."""

    normalizer: Literal["whisper_en", "basic", "none"] = "whisper_en"


@dataclass
class ReportSection:
    """What the reports written about this run may contain."""

    redact: bool = False  # mask card/account/phone numbers and e-mails in predictions, reports, logs
