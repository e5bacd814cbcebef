"""Corpus planning (no audio): held-out sentences and speakers, shares, determinism, config errors, CLI."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest

from whisper_tune.data.synth import corpus
from whisper_tune.data.synth.cli import add_synth_parser
from whisper_tune.data.synth.corpus import SynthConfig, build_speakers, plan_corpus
from whisper_tune.errors import UserError

BOTH = {"piper": True, "espeak": True}


def _plans(
    n: int = 600, seed: int = 4, engines: dict[str, bool] = BOTH, **kw: object
) -> list[corpus.ClipPlan]:
    return plan_corpus(SynthConfig(out="/nonexistent", n=n, seed=seed, **kw), engines)  # type: ignore[arg-type]


def test_splits_hold_out_sentences_and_speakers() -> None:
    plans = _plans()
    by_split: dict[str, list[corpus.ClipPlan]] = {
        s: [p for p in plans if p.split == s] for s in corpus.SPLITS
    }
    assert [len(by_split[s]) for s in corpus.SPLITS] == [480, 60, 60]
    texts = {s: {p.text for p in v} for s, v in by_split.items()}
    speakers = {s: {p.speaker.id for p in v} for s, v in by_split.items()}
    assert len({p.text for p in plans}) == len(plans)  # every sentence unique
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not texts[a] & texts[b]
        assert not speakers[a] & speakers[b]
        # babble voices also come from the clip's own split
    for p in plans:
        for _t, sp in p.babble:
            assert sp.id not in (set().union(*(speakers[s] for s in corpus.SPLITS if s != p.split)))
    # both engines appear in every split
    for s in corpus.SPLITS:
        assert {p.speaker.engine for p in by_split[s]} == {"piper", "espeak"}
    assert len({p.id for p in plans}) == len(plans)
    # stratified: every intent is in every split, roughly 8:1:1
    for s in ("validation", "test"):
        per_intent = Counter(p.intent for p in by_split[s])
        assert set(per_intent) == {p.intent for p in plans}
        banking = [v for k, v in per_intent.items() if k != "general"]
        assert max(banking) - min(banking) <= 2
    assert all(p.rel_path == f"audio/{p.split}/{p.id}.wav" for p in plans)


def test_template_holdout() -> None:
    plans = _plans(n=500, holdout_templates=0.2)
    train_t = {p.template for p in plans if p.split == "train"}
    eval_plans = [p for p in plans if p.split != "train"]
    assert not train_t & {p.template for p in eval_plans}
    assert Counter(p.split for p in plans) == {"train": 400, "validation": 50, "test": 50}
    assert {p.intent for p in plans if p.split == "test"} == {p.intent for p in plans}
    assert len({p.text for p in plans}) == 500
    # off by default: evaluation shares templates with train
    default = _plans(n=500)
    assert {p.template for p in default if p.split == "train"} & {
        p.template for p in default if p.split == "test"
    }
    with pytest.raises(UserError, match="holdout_templates"):
        SynthConfig(out="/x", holdout_templates=1.0)


def test_speaker_pool_disjoint_and_varied() -> None:
    pools = build_speakers(SynthConfig(out="/x", seed=1), BOTH)
    ids = [s.id for v in pools.values() for s in v]
    assert len(ids) == len(set(ids))
    train_voices = {s.voice for s in pools["train"] if s.engine == "espeak"}
    assert len(train_voices) >= 6  # accents
    assert len({s.variant for s in pools["train"]}) >= 10
    assert {s.engine for s in pools["test"]} == {"piper", "espeak"}


def test_shares_and_ranges() -> None:
    plans = _plans(
        n=1000, phone_share=0.3, noise_share=0.5, snr_db=(5.0, 15.0), general_share=0.2, piper_share=0.6
    )
    n = len(plans)
    assert abs(sum(p.channel == "phone" for p in plans) / n - 0.3) < 0.05
    noisy = [p for p in plans if p.noise != "none"]
    assert abs(len(noisy) / n - 0.5) < 0.05
    assert all(p.snr_db is not None and 5.0 <= p.snr_db <= 15.0 for p in noisy)
    assert all(p.snr_db is None for p in plans if p.noise == "none")
    assert set(Counter(p.noise for p in noisy)) == {"pink", "brown", "white", "hum", "babble"}
    assert all(p.babble for p in plans if p.noise == "babble")
    assert not any(p.babble for p in plans if p.noise != "babble")
    assert sum(p.domain == "general" for p in plans) == 200
    assert abs(sum(p.speaker.engine == "piper" for p in plans) / n - 0.6) < 0.05
    assert all(-12.0 <= p.peak_dbfs <= -2.0 for p in plans)


def test_plan_is_deterministic_and_seed_dependent() -> None:
    a = [asdict(p) for p in _plans(n=200, seed=9)]
    b = [asdict(p) for p in _plans(n=200, seed=9)]
    c = [asdict(p) for p in _plans(n=200, seed=10)]
    assert a == b
    assert a != c


def test_single_engine_plans() -> None:
    only_piper = _plans(n=50, engines={"piper": True, "espeak": False})
    assert {p.speaker.engine for p in only_piper} == {"piper"}
    assert all(sp.engine == "piper" for p in only_piper for _t, sp in p.babble)
    only_espeak = _plans(n=50, engines={"piper": False, "espeak": True})
    assert {p.speaker.engine for p in only_espeak} == {"espeak"}


def test_tiny_corpus_still_has_all_splits() -> None:
    plans = _plans(n=3)
    assert sorted(p.split for p in plans) == ["test", "train", "validation"]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n": 0}, "--n"),
        ({"phone_share": 1.5}, "phone_share"),
        ({"noise_share": -0.1}, "noise_share"),
        ({"snr_db": (20.0, 5.0)}, "snr_db"),
        ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions"),
        ({"noise_types": ("pink", "traffic")}, "traffic"),
        ({"domain": "insurance"}, "banking"),
        ({"workers": 0}, "workers"),
    ],
)
def test_config_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(UserError, match=match):
        SynthConfig(out="/x", **kw)  # type: ignore[arg-type]


def test_refuses_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(UserError, match="not empty"):
        corpus._prepare_out(tmp_path, overwrite=False)
    (tmp_path / "train.jsonl").write_text("old")
    (tmp_path / "audio").mkdir()
    corpus._prepare_out(tmp_path, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "user data"  # only our own outputs are removed
    assert not (tmp_path / "train.jsonl").exists() and not (tmp_path / "audio").exists()
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        corpus._prepare_out(f, overwrite=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    add_synth_parser(sub)
    return p


def test_cli_arguments() -> None:
    args = _parser().parse_args(
        ["synth", "--domain", "banking", "--n", "12", "--out", "/tmp/x", "--seed", "5", "--workers", "2",
         "--phone-share", "0.5", "--noise-share", "0.25", "--snr-db", "5,20", "--general-share", "0.3"]
    )  # fmt: skip
    assert (args.n, args.seed, args.workers, args.snr_db) == (12, 5, 2, (5.0, 20.0))
    assert (args.phone_share, args.noise_share, args.general_share) == (0.5, 0.25, 0.3)
    assert callable(args.func)
    defaults = _parser().parse_args(["synth", "--out", "d"])
    assert defaults.workers is None and defaults.n == 1000 and defaults.domain == "banking"


@pytest.mark.parametrize(
    "bad",
    [
        ["--snr-db", "20,5"],
        ["--snr-db", "a,b"],
        ["--phone-share", "1.5"],
        ["--n", "0"],
        ["--domain", "x"],
        [],
    ],
)
def test_cli_rejects_bad_arguments(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["synth", *bad] if bad else ["synth"]  # [] -> missing --out
    if bad:
        argv += ["--out", "d"]
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
