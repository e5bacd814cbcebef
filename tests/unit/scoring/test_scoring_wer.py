"""WER/CER known values (computed by hand), alignments, domain-term recall, trainer metrics."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_tune.errors import DataError
from whisper_tune.scoring import (
    WordError,
    domain_term_recall,
    error_rates,
    load_terms,
    score_utterance,
)
from whisper_tune.train.metrics_hook import make_compute_metrics


def test_wer_cer_known_values():
    refs = ["the cat sat on the mat", "hello world"]
    hyps = ["the cat sit on mat", "hello big world"]
    r = error_rates(refs, hyps, "none")
    # utt 1: sat->sit (S), "the" missing (D); utt 2: "big" inserted (I); 8 reference words
    assert (r["substitutions"], r["deletions"], r["insertions"], r["hits"]) == (1, 1, 1, 6)
    assert r["ref_words"] == 8
    assert r["wer"] == pytest.approx(3 / 8)
    # chars: a->i (1) + "the " deleted (4) of 22; "big " inserted (4) of 11
    assert r["ref_chars"] == 33
    assert r["cer"] == pytest.approx(9 / 33)
    assert r["substitution_rate"] == pytest.approx(1 / 8)
    assert r["utterances"] == 2


def test_corpus_wer_weights_by_words_not_utterances():
    # one long perfect utterance and one short fully wrong one: 2 errors / 10 words, not mean(0, 1)
    r = error_rates(["a b c d e f g h", "x y"], ["a b c d e f g h", "p q"], "none")
    assert r["wer"] == pytest.approx(0.2)


def test_normalized_vs_orthographic():
    refs, hyps = ["Hello, World!"], ["hello world"]
    assert error_rates(refs, hyps, "none")["wer"] == pytest.approx(1.0)
    assert error_rates(refs, hyps, "whisper_en")["wer"] == 0.0
    # numbers: spoken form and digits agree after Whisper normalization
    assert error_rates(["I owe you twenty dollars"], ["i owe you $20"], "whisper_en")["wer"] == 0.0


def test_empty_reference_conventions():
    assert error_rates([""], [""], "none")["wer"] == 0.0
    assert error_rates([""], ["noise"], "none")["wer"] == 1.0
    assert error_rates(["a b"], [""], "none")["deletions"] == 2
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rates(["a", "b"], ["a"])


def test_alignment_lists_each_error():
    s = score_utterance("send money with Zelle today", "send many with else today please", "whisper_en")
    assert s.ref == "send money with zelle today"
    assert s.errors == [
        WordError("substitution", "money", "many", 1),
        WordError("substitution", "zelle", "else", 3),
        WordError("insertion", "", "please", 5),
    ]
    assert [str(e) for e in s.errors] == ["money -> many", "zelle -> else", "+please"]
    assert s.wer == pytest.approx(3 / 5)


def test_alignment_splits_runs_and_deletions():
    s = score_utterance("a b c d", "x y c", "none")
    assert [(e.kind, e.ref, e.hyp, e.position) for e in s.errors] == [
        ("substitution", "a", "x", 0),
        ("substitution", "b", "y", 1),
        ("deletion", "d", "", 3),
    ]
    assert str(s.errors[-1]) == "-d"


def test_domain_term_recall():
    refs = ["send it with Zelle", "my APR and my apr", "no terms here", "freeze my Credit Card"]
    hyps = ["send it with else", "my A.P.R. and my app or", "no terms", "freeze my credit card"]
    r = domain_term_recall(refs, hyps, ["Zelle", "APR", "credit card", "overdraft", "um"])
    assert r.per_term == {
        "APR": {"occurrences": 2, "found": 1},
        "Zelle": {"occurrences": 1, "found": 0},
        "credit card": {"occurrences": 1, "found": 1},
    }
    assert (r.found, r.occurrences) == (2, 4)
    assert r.recall == pytest.approx(0.5)
    assert r.unusable_terms == ["um"]  # a filler normalizes to nothing


def test_domain_term_recall_counts_per_utterance_not_globally():
    # the hypothesis of another utterance containing the term does not count
    r = domain_term_recall(["pay with zelle", "hello"], ["pay with else", "zelle"], ["zelle"])
    assert (r.found, r.occurrences) == (0, 1)


def test_load_terms(tmp_path):
    f = tmp_path / "terms.txt"
    f.write_text("# banking terms\nZelle\n\nAPR  # annual rate\nZelle\ncredit card\n", encoding="utf-8")
    assert load_terms(f) == ["Zelle", "APR", "credit card"]
    with pytest.raises(DataError, match="not found"):
        load_terms(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(DataError, match="no terms"):
        load_terms(tmp_path / "empty.txt")


class _Pred:
    def __init__(self, predictions, label_ids):
        self.predictions = predictions
        self.label_ids = label_ids


def _pad(rows, value):
    n = max(len(r) for r in rows)
    return np.array([r + [value] * (n - len(r)) for r in rows])


def test_make_compute_metrics_decodes_and_scores():
    from whisper_tune.models.random_init import make_processor

    proc = make_processor()
    tok = proc.tokenizer
    refs = ["Hello world.", "send money with Zelle"]
    hyps = ["hello world", "send many with Zelle"]
    labels = _pad([tok(t).input_ids for t in refs], -100)  # labels are padded with -100
    preds = _pad([tok(t).input_ids for t in hyps], -100)  # so are generated ids across batches
    assert tok.convert_tokens_to_ids("<|startoftranscript|>") in labels[0]
    m = make_compute_metrics(proc)(_Pred((preds,), labels))
    assert set(m) == {"wer", "wer_ortho", "cer"}
    assert m["wer"] == pytest.approx(1 / 6)  # money -> many
    assert m["wer_ortho"] == pytest.approx(3 / 6)  # + "Hello"/"world." differ in case/punctuation
    assert 0 < m["cer"] < m["wer"]
