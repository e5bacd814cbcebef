"""``whisper-tune evaluate`` / ``compare``: argument handling and bad input (exit 2, clear message)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from whisper_tune.cli import build_parser, main
from whisper_tune.errors import UserError
from whisper_tune.evaluate.cli import _default_out
from whisper_tune.evaluate.pipeline import resolve_model_spec


@pytest.fixture()
def manifest(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    rows = [
        {"audio_filepath": "a.wav", "text": "hello", "channel": "phone"},
        {"audio_filepath": "bad.wav", "text": "broken", "channel": "wide"},
    ]
    p = tmp_path / "test.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_subcommands_registered():
    args = build_parser().parse_args(
        [
            "compare",
            "--base",
            "tiny.en",
            "--tuned",
            "runs/x",
            "--data",
            "t.jsonl",
            "--group-by",
            "intent,channel",
        ]
    )
    assert (args.base, args.tuned, args.group_by, args.batch_size, args.normalizer) == (
        "tiny.en",
        "runs/x",
        "intent,channel",
        8,
        "whisper_en",
    )
    args = build_parser().parse_args(["evaluate", "--model", "m", "--data", "d", "--batch-size", "4"])
    assert args.batch_size == 4 and callable(args.func)


@pytest.mark.parametrize("bad", [["--batch-size", "0"], ["--batch-size", "x"], ["--normalizer", "fr"]])
def test_bad_options_exit_2(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--model", "m", "--data", "d", *bad])
    assert e.value.code == 2


def test_missing_data_file(tmp_path, capsys):
    assert main(["evaluate", "--model", "tiny.en", "--data", str(tmp_path / "nope.jsonl")]) == 2
    assert "error: --data" in capsys.readouterr().err


def test_unknown_group_field_named_before_model_load(manifest, tmp_path, capsys):
    rc = main(
        ["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(manifest), "--group-by", "speaker"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "speaker" in err and "available: channel" in err


def test_unknown_model_is_a_user_error(manifest, tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "no-model"),
            "--data",
            str(manifest),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "no-model" in capsys.readouterr().err


def test_no_usable_audio(tmp_path, capsys):
    (tmp_path / "bad.wav").write_bytes(b"junk")
    (tmp_path / "t.jsonl").write_text(json.dumps({"audio_filepath": "bad.wav", "text": "x"}) + "\n")
    assert main(["evaluate", "--model", "m", "--data", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "no usable utterances" in err and "t.jsonl:1" in err


def test_run_dir_resolution(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    assert resolve_model_spec(str(run)) == str(run / "best")
    assert resolve_model_spec("tiny.en") == "tiny.en"
    (tmp_path / "unfinished" / "checkpoint_000000").mkdir(parents=True)
    with pytest.raises(UserError, match="whisper-tune best"):
        resolve_model_spec(str(tmp_path / "unfinished"))
    assert _default_out(str(run), "x") == run / "eval"
    assert str(_default_out("tiny.en", "compare-report")) == "compare-report"


def test_load_eval_items_counts_skips_and_dedupes_ids(manifest, tmp_path):
    from dataclasses import dataclass, field

    from whisper_tune.evaluate import load_eval_items

    items, skipped = load_eval_items(str(manifest))
    assert [it.text for it in items] == ["hello"] and items[0].duration == 1.0
    assert items[0].meta == {"channel": "phone"}
    assert len(skipped) == 1
    assert skipped[0]["origin"].endswith("test.jsonl:2") and skipped[0]["reason"] == "unreadable_audio"
    assert "bad.wav" in skipped[0]["message"]

    @dataclass
    class S:
        id: str
        audio: str
        text: str
        meta: dict = field(default_factory=dict)
        origin: str = ""

    wav = str(tmp_path / "a.wav")
    items, skipped = load_eval_items([S("x", wav, "a"), S("x", wav, "b"), S("y", wav, "c")], limit=2)
    assert [it.id for it in items] == ["x", "x#2"] and skipped == []
