"""``whisper-tune config --explain``: every key of every training-config dataclass, with help."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from whisper_tune.cli import main
from whisper_tune.train import config as train_config
from whisper_tune.train.explain import FIELD_HELP, config_keys, explain_text, source_comments


def _dataclass_keys(root: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(root)
    for f in dataclasses.fields(root):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if prefix:
                keys.append(f"{prefix}{f.name}")
            keys += _dataclass_keys(tp, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_every_field_of_every_section_is_listed_with_help() -> None:
    expected = _dataclass_keys(train_config.JobConfig)
    listed = {k.key: k for k in config_keys()}
    assert list(listed) == expected
    assert len(expected) > 60
    missing = [k for k, v in listed.items() if not v.help.strip()]
    assert not missing, f"add a trailing '# ...' comment (or a FIELD_HELP line) for {missing}"
    for k in listed.values():
        assert k.type
    # every section class of train/config.py is reached
    sections = {
        obj
        for obj in vars(train_config).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == train_config.__name__
    }
    reached = {train_config.JobConfig} | {
        h for c in sections for h in typing.get_type_hints(c).values() if h in sections
    }
    assert sections == reached


def test_field_help_names_only_real_keys() -> None:
    keys = {k.key for k in config_keys()}
    assert set(FIELD_HELP) <= keys, sorted(set(FIELD_HELP) - keys)


def test_types_defaults_and_comments_come_from_the_source() -> None:
    listed = {k.key: k for k in config_keys()}
    lr = listed["train.learning_rate"]
    assert (lr.type, lr.default) == ("float", str(train_config.TrainSection().learning_rate))
    assert listed["train.strategy"].type == "full | decoder | cross_attention | encoder | lora"
    assert listed["model.language"].type == "str | null" and listed["model.language"].default == "null"
    assert listed["data.train"].default == '""'
    assert listed["run.interpolation_alphas"].type == "list[float]"
    # a trailing comment, and a comment block written above a field
    assert "multilingual models only" in listed["model.language"].help
    assert "Real-speech guard" in listed["data.guard"].help
    comments = source_comments(train_config.RunSection)
    assert "guard_tolerance" in comments and "interpolate" not in comments


def test_cli_config_explain_and_json(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["config", "--explain"]) == 0
    text = capsys.readouterr().out
    assert text == explain_text()
    for key in ("train.learning_rate", "scaling.num_workers", "run.guard_tolerance", "train.lora.r"):
        assert f"  {key}  (" in text
    assert main(["config", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["key"] for r in rows} == {k.key for k in config_keys()}


def test_train_help_points_to_the_list(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "whisper-tune config --explain" in " ".join(capsys.readouterr().out.split())
