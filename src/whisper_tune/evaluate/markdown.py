"""Markdown rendering of evaluation and comparison results (``report.md``).

Why: the report is read by people deciding whether a tuned model ships; it has to be
readable without tools (tables, aligned errors, embedded plots) while ``report.json``
carries the same numbers for machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evidence import entities_of
from .report import ComparisonResult, EvalResult, UtteranceResult, relative_change_pct

__all__ = ["render_comparison", "render_evaluation", "scored_as"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f} %"


def _rel(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f} %"


MAX_CELL = 160


def _cell(s: Any) -> str:
    text = str(s).replace("\n", " ")
    if len(text) > MAX_CELL:  # runaway hypotheses (repetition loops) would swamp the table
        text = text[: MAX_CELL - 1] + "…"
    return text.replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _errors(u: UtteranceResult) -> str:
    return "; ".join(str(e) for e in u.score.errors) or "-"


def _images(plots: dict[str, Path], out_dir: Path) -> list[str]:
    lines = []
    for name, p in plots.items():
        try:
            rel = p.relative_to(out_dir)
        except ValueError:
            rel = p
        lines += [f"![{name}]({rel.as_posix()})", ""]
    return lines


def _skipped(skipped: list[dict[str, Any]]) -> list[str]:
    if not skipped:
        return []
    lines = [f"## Skipped ({len(skipped)})", ""]
    rows = [(s.get("origin", ""), s.get("reason", ""), s.get("message", "")) for s in skipped[:20]]
    lines += _table(["where", "reason", "message"], rows)
    if len(skipped) > 20:
        lines += [f"... and {len(skipped) - 20} more (report.json lists all).", ""]
    return lines


def scored_as(r: EvalResult) -> str:
    """``backend `ct2`, compute type `int8`, device `cpu`: `DIR``` -- what exactly was scored."""
    what = f"backend `{r.backend}`, compute type `{r.compute_type or '?'}`, device `{r.device}`"
    return what + (f": `{r.artifact}`" if r.artifact else "")


def render_evaluation(r: EvalResult, plots: dict[str, Path], out_dir: Path, worst_n: int = 10) -> str:
    m = r.metrics()
    lines = [
        f"# Evaluation: {r.model}",
        "",
        f"Data: `{r.data}` ({len(r.utterances)} utterances, {r.audio_seconds / 60:.1f} min of audio). "
        f"Normalizer: `{r.normalizer}`. Rates are over all words of all utterances.",
        "",
        f"Scored: {scored_as(r)}.",
        "",
    ]
    c = r.counts
    rows = [
        ("WER (normalized)", _pct(r.wer)),
        ("WER (orthographic)", _pct(r.wer_ortho)),
        ("CER (normalized)", _pct(r.cer)),
        ("substitutions / deletions / insertions", f"{c.substitutions} / {c.deletions} / {c.insertions}"),
        ("reference words", c.ref_words),
    ]
    if r.domain_terms is not None:
        d = r.domain_terms
        rows.append(("domain-term recall", f"{_pct(d.recall)} ({d.found}/{d.occurrences})"))
    t = m["timing"]
    if t["clips_per_second"]:
        rows.append(("speed", f"{t['clips_per_second']:.2f} clips/s, RTFx {t['rtfx']:.1f} on {t['device']}"))
    lines += _table(["metric", "value"], rows)
    lines += r.longform.markdown_lines() if r.longform is not None else []
    for key, values in r.groups().items():
        lines += [f"## WER by {key}", ""]
        lines += _table(
            [key, "n", "WER", "WER ortho", "CER"],
            [(v, g["n"], _pct(g["wer"]), _pct(g["wer_ortho"]), _pct(g["cer"])) for v, g in values.items()],
        )
    lines += _images(plots, out_dir)
    if r.domain_terms is not None and r.domain_terms.per_term:
        lines += ["## Domain terms (found / occurrences)", ""]
        ranked = sorted(r.domain_terms.per_term.items(), key=lambda kv: (-kv[1]["occurrences"], kv[0]))
        lines += _table(
            ["term", "found", "occurrences"], [(k, v["found"], v["occurrences"]) for k, v in ranked[:40]]
        )
    subs = r.top_substitutions()
    if subs:
        lines += ["## Most frequent substitutions", ""]
        lines += _table(["reference", "hypothesis", "count"], subs)
    worst = r.worst(worst_n)
    if worst:
        lines += [f"## Worst {len(worst)} utterances", ""]
        lines += _table(
            ["id", "WER", "reference", "hypothesis", "errors"],
            [(u.id, _pct(u.score.wer), u.ref, u.hyp, _errors(u)) for u in worst],
        )
    lines += _skipped(r.skipped)
    return "\n".join(lines)


def _verdict(cmp: ComparisonResult) -> str:
    sig = cmp.significance()
    if sig.diff_high < 0:
        word = "The tuned model is better on this set (the 95 % interval excludes 0)."
    elif sig.diff_low > 0:
        word = "The tuned model is WORSE on this set (the 95 % interval excludes 0)."
    else:
        word = "The difference on this set could be noise (the 95 % interval includes 0)."
    if cmp.guard is not None:
        g = cmp.guard.significance()
        if g.diff > 0:
            word += (
                f" On real speech (guard) the tuned model is worse: {_pct(cmp.guard.base.wer)} -> "
                f"{_pct(cmp.guard.tuned.wer)} ({g.summary()})."
            )
        else:
            word += f" Real speech (guard) does not regress: {_pct(cmp.guard.base.wer)} -> {_pct(cmp.guard.tuned.wer)}."
    elif cmp.guard_note:
        word += f" {cmp.guard_note}."
    return word


def _ci(sig: Any) -> str:
    """``-4.10 [-5.32, -2.95]``: the difference and its 95 % interval, in WER points."""
    return f"{sig.diff * 100:+.2f} [{sig.diff_low * 100:+.2f}, {sig.diff_high * 100:+.2f}]"


def _headline(cmp: ComparisonResult) -> list[str]:
    """One table a person reads first: this set, the prompt baseline, the guard."""
    b, t, p = cmp.base, cmp.tuned, cmp.prompt_baseline
    header = (
        ["set", "base"]
        + (["base + prompt"] if p is not None else [])
        + ["tuned", "difference, pts [95 % CI]"]
    )
    rows: list[list[Any]] = [
        [f"`{Path(b.data).name}` ({len(cmp.pairs())} utt.)", _pct(b.wer)]
        + ([_pct(p.wer)] if p is not None else [])
        + [_pct(t.wer), _ci(cmp.significance())]
    ]
    if cmp.guard is not None:
        g = cmp.guard
        rows.append(
            [f"real-speech guard `{Path(g.base.data).name}` ({len(g.pairs())} utt.)", _pct(g.base.wer)]
            + (["-"] if p is not None else [])
            + [_pct(g.tuned.wer), _ci(g.significance())]
        )
    out = ["## Headline (normalized WER)", ""] + _table(header, rows)
    if p is not None:
        verdict = "beats" if t.wer < p.wer else "does NOT beat"
        out += [
            f"Prompt baseline: the base model decoding with the domain vocabulary as its initial prompt "
            f"(`{(p.prompt or '')[:120]}`); tuning {verdict} prompting on this set.",
            "",
        ]
    if cmp.guard is None:
        out += [f"{cmp.guard_note or 'no real-speech guard'}.", ""]
    if cmp.selection:
        sel = cmp.selection
        out += [
            f"Export rule: {sel.get('rule', '?')}; interpolation alpha {sel.get('alpha', 1.0)}"
            + (f" -- {sel['warning']}" if sel.get("warning") else ""),
            "",
        ]
    return out


def _entities(cmp: ComparisonResult) -> list[str]:
    be, te = entities_of(cmp.base.utterances), entities_of(cmp.tuned.utterances)
    if not be.total:
        return []
    rows = []
    for kind in sorted(be.per_kind):
        b, t = be.per_kind[kind], te.per_kind.get(kind, {"correct": 0, "total": 0})
        rows.append((kind, b["total"], f"{b['correct']}/{b['total']}", f"{t['correct']}/{t['total']}"))
    rows.append(("all", be.total, f"{_pct(be.accuracy)}", f"{_pct(te.accuracy)}"))
    return ["## Entities (amounts, dates, digits, numbers; exact after normalization)", ""] + _table(
        ["kind", "occurrences", "base correct", "tuned correct"], rows
    )


def render_comparison(
    cmp: ComparisonResult, plots: dict[str, Path], out_dir: Path, curves_note: str = "", worst_n: int = 10
) -> str:
    b, t = cmp.base, cmp.tuned
    d = cmp.to_dict()
    lines = [
        "# Base vs tuned",
        "",
        f"- base: `{b.model}` ({scored_as(b)})",
        f"- tuned: `{t.model}` ({scored_as(t)})",
        f"- data: `{b.data}` ({len(cmp.pairs())} utterances, {b.audio_seconds / 60:.1f} min of audio)",
        f"- normalizer: `{b.normalizer}`; rates are over all words of all utterances",
        "",
        f"**{cmp.wer_difference_line()}**  (relative change of normalized WER, tuned vs base; "
        "negative = tuned better)",
        "",
        f"**{cmp.ci_line()}**",
        "",
        _verdict(cmp),
        "",
    ]
    lines += _headline(cmp)
    lines += cmp.longform.markdown_lines() if cmp.longform is not None else []
    rows: list[tuple[Any, ...]] = [
        ("WER (normalized)", _pct(b.wer), _pct(t.wer), _rel(relative_change_pct(b.wer, t.wer))),
        (
            "WER (orthographic)",
            _pct(b.wer_ortho),
            _pct(t.wer_ortho),
            _rel(relative_change_pct(b.wer_ortho, t.wer_ortho)),
        ),
        ("CER (normalized)", _pct(b.cer), _pct(t.cer), _rel(relative_change_pct(b.cer, t.cer))),
    ]
    bc, tc = b.counts.to_dict(), t.counts.to_dict()
    for k in ("substitution_rate", "deletion_rate", "insertion_rate"):
        rows.append((k.replace("_", " "), _pct(bc[k]), _pct(tc[k]), _rel(relative_change_pct(bc[k], tc[k]))))
    if b.domain_terms is not None and t.domain_terms is not None:
        bd, td = b.domain_terms, t.domain_terms
        rows.append(
            (
                "domain-term recall",
                f"{_pct(bd.recall)} ({bd.found}/{bd.occurrences})",
                f"{_pct(td.recall)} ({td.found}/{td.occurrences})",
                _rel(relative_change_pct(bd.recall, td.recall)),
            )
        )
    lines += ["## Details", ""]
    lines += _table(["metric", "base", "tuned", "change"], rows)
    lines += _entities(cmp)
    lines += [
        f"Utterances improved: {d['improved']}, regressed: {d['regressed']}, "
        f"unchanged: {len(cmp.pairs()) - d['improved'] - d['regressed']} (by word-error count).",
        "",
    ]
    for key, values in cmp.group_table().items():
        lines += [f"## WER by {key}", ""]
        lines += _table(
            [key, "n", "base", "tuned", "change"],
            [
                (v, g["n"], _pct(g["base_wer"]), _pct(g["tuned_wer"]), _rel(g["relative_change_pct"]))
                for v, g in values.items()
            ],
        )
    lines += _images(plots, out_dir)
    if curves_note:
        lines += [curves_note, ""]
    if b.domain_terms is not None and t.domain_terms is not None:
        terms = sorted(
            set(b.domain_terms.per_term) | set(t.domain_terms.per_term),
            key=lambda k: -b.domain_terms.per_term.get(k, {"occurrences": 0})["occurrences"],  # type: ignore[union-attr]
        )
        if terms:
            lines += ["## Domain terms (found / occurrences)", ""]
            lines += _table(
                ["term", "base", "tuned"],
                [
                    (
                        k,
                        "{found}/{occurrences}".format(
                            **b.domain_terms.per_term.get(k, {"found": 0, "occurrences": 0})
                        ),
                        "{found}/{occurrences}".format(
                            **t.domain_terms.per_term.get(k, {"found": 0, "occurrences": 0})
                        ),
                    )
                    for k in terms[:40]
                ],
            )
    for name, res in (("base", b), ("tuned", t)):
        subs = res.top_substitutions(10)
        if subs:
            lines += [f"## Most frequent substitutions ({name})", ""]
            lines += _table(["reference", "hypothesis", "count"], subs)
    worst = cmp.worst(worst_n)
    if worst:
        lines += [f"## Worst {len(worst)} utterances (tuned)", ""]
        lines += _table(
            ["id", "reference", "base WER", "base errors", "tuned WER", "tuned hypothesis", "tuned errors"],
            [
                (tu.id, tu.ref, _pct(bu.score.wer), _errors(bu), _pct(tu.score.wer), tu.hyp, _errors(tu))
                for bu, tu in worst
            ],
        )
    n_reg, reg = cmp.regressions(worst_n)
    if reg:
        lines += [f"## Regressions ({n_reg} utterances worse than base; largest shown)", ""]
        lines += _table(
            ["id", "reference", "base hypothesis", "tuned hypothesis", "tuned errors"],
            [(tu.id, tu.ref, bu.hyp, tu.hyp, _errors(tu)) for bu, tu in reg],
        )
    lines += _skipped(b.skipped)
    return "\n".join(lines)
