"""The job config's ``report:`` section: read from YAML/overrides, unknown keys named."""

from __future__ import annotations

import pytest

from whisper_tune.config import ConfigError
from whisper_tune.train.config import load_job_config

_DATA = ["data.train=train.jsonl", "data.eval=eval.jsonl"]


def test_report_redact_defaults_off_and_can_be_turned_on() -> None:
    assert load_job_config(None, _DATA).report.redact is False
    cfg = load_job_config(None, [*_DATA, "report.redact=true"])
    assert cfg.report.redact is True
    assert cfg.to_dict()["report"] == {"redact": True}


def test_unknown_report_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"report\.redcat"):
        load_job_config(None, [*_DATA, "report.redcat=true"])
