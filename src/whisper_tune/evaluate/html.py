"""``report.html``: the base-vs-tuned report as one self-contained page a person wants to open.

Why: ``report.md`` needs a Markdown viewer and loses its plots once the folder is moved, and
``report.json`` is for programs. This page is one file that opens anywhere, offline: the CSS
is inline, the plots are embedded as base64 PNG ``data:`` URIs, and a Content-Security-Policy
forbids every request (no fonts, scripts or images from anywhere). It is rendered from the
same dict as ``report.json`` (:meth:`ComparisonResult.to_dict`), so the two cannot disagree:
the headline table with the bootstrap interval and P(improvement), the prompt baseline and
the real-speech guard; the export rule; per-group breakdowns; and the worst utterances and
regressions with their word alignment (jiwer's, on the normalized text the WER counts:
substitutions, deletions and insertions marked). Every text from data is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from whisper_tune.scoring.wer import resolve_normalizer

__all__ = ["REPORT_HTML", "aligned_words", "render_report_html", "write_report_html"]

REPORT_HTML = "report.html"
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1d2433;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #dde}
table{border-collapse:collapse;margin:.6rem 0}th,td{padding:.3rem .6rem;border-bottom:1px solid #e6e8ef;
text-align:left;vertical-align:top}th{background:#f4f6fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#5a6478}.verdict{font-size:1.05rem;padding:.6rem .9rem;background:#f4f6fa;border-left:4px solid #4a6fd0}
.warn{border-left-color:#d04a4a;background:#fbf0f0}.better{color:#17663a;font-weight:600}
.worse{color:#a11d1d;font-weight:600}.bar{height:.55rem;background:#8da2d8;display:inline-block}
.bar.tuned{background:#3d9a63}.align{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9rem;line-height:1.9}
.align span{padding:0 .15rem;border-radius:3px}.s{background:#fde7b0}.s del{color:#8a5a00}.s ins{color:#1d2433}
.d{background:#f8d0d0;text-decoration:line-through}.i{background:#cfe8d6}del,ins{text-decoration:none}
.legend span{margin-right:1rem}img{max-width:100%;border:1px solid #e6e8ef}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(x: Any) -> str:
    return f"{x:.2%}" if isinstance(x, (int, float)) else "n/a"


def _pts(x: Any) -> str:
    return f"{x * 100:+.2f}" if isinstance(x, (int, float)) else "n/a"


def _ci(sig: Mapping[str, Any] | None) -> str:
    if not sig:
        return "n/a"
    return f"{_pts(sig.get('diff'))} [{_pts(sig.get('diff_low'))}, {_pts(sig.get('diff_high'))}]"


def _cls(diff: Any) -> str:
    if not isinstance(diff, (int, float)) or diff == 0:
        return ""
    return "better" if diff < 0 else "worse"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "") -> str:
    """A table of already-escaped cells (a cell starting with ``<td`` is used as it is)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    ident = f' id="{_e(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(text: str, ident: str = "", cls: str = "") -> str:
    attrs = f' id="{_e(ident)}"' if ident else ""
    return f'<td class="num {cls}"{attrs}>{_e(text)}</td>'


def aligned_words(ref: str, hyp: str, normalizer: str = "whisper_en") -> list[tuple[str, str, str]]:
    """``(kind, ref words, hyp words)`` chunks of jiwer's word alignment of the normalized texts;
    kind is ``equal``, ``substitute``, ``delete`` or ``insert`` (as the WER counts them)."""
    import jiwer

    norm = resolve_normalizer(normalizer)
    r, h = norm(ref), norm(hyp)
    if not r.split() or not h.split():  # jiwer needs words on both sides
        chunks = [("delete", r, "")] if r.split() else []
        return chunks + ([("insert", "", h)] if h.split() else [])
    out = jiwer.process_words([r], [h])
    rw, hw = out.references[0], out.hypotheses[0]
    return [
        (
            c.type,
            " ".join(rw[c.ref_start_idx : c.ref_end_idx]),
            " ".join(hw[c.hyp_start_idx : c.hyp_end_idx]),
        )
        for c in out.alignments[0]
    ]


def _alignment(ref: str, hyp: str, normalizer: str) -> str:
    parts: list[str] = []
    for kind, r, h in aligned_words(ref, hyp, normalizer):
        if kind == "equal":
            parts.append(_e(r))
        elif kind == "substitute":
            parts.append(
                f'<span class="s" title="substitution"><del>{_e(r)}</del> &rarr; <ins>{_e(h)}</ins></span>'
            )
        elif kind == "delete":
            parts.append(f'<span class="d" title="deletion">{_e(r)}</span>')
        else:
            parts.append(f'<span class="i" title="insertion">+{_e(h)}</span>')
    return '<div class="align">' + " ".join(parts) + "</div>"


def _headline(d: Mapping[str, Any]) -> str:
    base, tuned = d.get("base") or {}, d.get("tuned") or {}
    sig = d.get("significance") or {}
    prompt, guard = d.get("prompt_baseline"), d.get("guard")
    header = ["set", "base"] + (["base + prompt"] if prompt else []) + ["tuned", "difference, pts [95 % CI]"]
    header += ["relative", "P(improvement)"]
    rel = sig.get("rel_diff")
    rows = [
        [f"{_e(Path(str(base.get('data', ''))).name)} ({_e(d.get('utterances_compared', '?'))} utt.)"]
        + [_num(_pct(base.get("wer")), "base-wer")]
        + ([_num(_pct(prompt.get("wer")), "prompt-wer")] if prompt else [])
        + [
            _num(_pct(tuned.get("wer")), "tuned-wer", _cls(sig.get("diff"))),
            _num(_ci(sig), "wer-ci"),
            _num(f"{rel * 100:+.2f} %" if isinstance(rel, (int, float)) else "n/a", "wer-rel"),
            _num(_pct(sig.get("prob_improvement")), "p-improvement"),
        ]
    ]
    if guard:
        gs = guard.get("significance") or {}
        grel = gs.get("rel_diff")
        rows.append(
            [
                f"real-speech guard {_e(Path(str(guard.get('data', ''))).name)} ({_e(guard.get('utterances'))} utt.)"
            ]
            + [_num(_pct(guard.get("base_wer")), "guard-base-wer")]
            + (["-"] if prompt else [])
            + [
                _num(_pct(guard.get("tuned_wer")), "guard-tuned-wer", _cls(gs.get("diff"))),
                _num(_ci(gs), "guard-ci"),
                _num(f"{grel * 100:+.2f} %" if isinstance(grel, (int, float)) else "n/a"),
                _num(_pct(gs.get("prob_improvement"))),
            ]
        )
    out = ["<h2>Headline (normalized WER)</h2>", _table(header, rows, "headline")]
    units = f"{sig.get('replicates', '?')} paired bootstrap resamples of {sig.get('units', '?')} {sig.get('unit', 'unit')}s"
    out.append(
        f'<p class="meta">Difference = tuned - base in WER points (negative = tuned better), 95 % interval '
        f"from {_e(units)}; P(improvement) = share of resamples where tuned is better.</p>"
    )
    if prompt:
        beats = "beats" if prompt.get("tuned_beats_prompt") else "does NOT beat"
        out.append(
            f"<p>Prompt baseline: the base model decoding with the domain vocabulary as its initial prompt "
            f"(<code>{_e(str(prompt.get('prompt') or '')[:160])}</code>); tuning {beats} prompting.</p>"
        )
    if not guard:
        out.append(f"<p>{_e(d.get('guard_note') or 'no real-speech guard')}.</p>")
    return "\n".join(out)


def _verdict(d: Mapping[str, Any]) -> str:
    sig, guard = d.get("significance") or {}, d.get("guard")
    low, high = sig.get("diff_low", 0.0), sig.get("diff_high", 0.0)
    if high < 0:
        text, warn = "The tuned model is better on this set (the 95 % interval excludes 0).", False
    elif low > 0:
        text, warn = "The tuned model is WORSE on this set (the 95 % interval excludes 0).", True
    else:
        text, warn = "The difference on this set could be noise (the 95 % interval includes 0).", False
    if guard:
        worse = (guard.get("significance") or {}).get("diff", 0.0) > 0
        warn = warn or worse
        text += f" Real speech (guard): {_pct(guard.get('base_wer'))} -> {_pct(guard.get('tuned_wer'))}" + (
            ", worse." if worse else ", no regression."
        )
    return f'<p class="verdict{" warn" if warn else ""}" id="verdict">{_e(text)}</p>'


def _selection(sel: Mapping[str, Any] | None) -> str:
    if not sel:
        return ""
    alpha = sel.get("alpha", 1.0)
    line = f"Export rule: {sel.get('rule', '?')}" + (
        f"; WiSE-FT mix with the base, alpha {alpha:g}"
        if isinstance(alpha, (int, float)) and alpha != 1
        else ""
    )
    warning = sel.get("warning")
    out = f"<p>{_e(line)}</p>"
    if warning:
        out += f'<p class="verdict warn">{_e(warning)}</p>'
    return out


def _details(d: Mapping[str, Any]) -> str:
    b, t = d.get("base") or {}, d.get("tuned") or {}
    bc, tc = b.get("counts") or {}, t.get("counts") or {}
    rows = [
        ["WER (normalized)", _num(_pct(b.get("wer"))), _num(_pct(t.get("wer")))],
        ["WER (orthographic)", _num(_pct(b.get("wer_ortho"))), _num(_pct(t.get("wer_ortho")))],
        ["CER (normalized)", _num(_pct(b.get("cer"))), _num(_pct(t.get("cer")))],
    ]
    for k in ("substitution_rate", "deletion_rate", "insertion_rate"):
        rows.append([_e(k.replace("_", " ")), _num(_pct(bc.get(k))), _num(_pct(tc.get(k)))])
    bd, td = b.get("domain_terms"), t.get("domain_terms")
    if bd and td:
        rows.append(["domain-term recall", _num(_pct(bd.get("recall"))), _num(_pct(td.get("recall")))])
    counts = (
        f"Utterances improved: {d.get('improved', 0)}, regressed: {d.get('regressed', 0)} "
        f"of {d.get('utterances_compared', 0)} (by word-error count)."
    )
    return "<h2>Details</h2>" + _table(["metric", "base", "tuned"], rows) + f"<p>{_e(counts)}</p>"


def _bar(x: Any, top: float, cls: str) -> str:
    width = 0.0 if not isinstance(x, (int, float)) or top <= 0 else min(100.0, 100.0 * x / top)
    return f'<span class="bar {cls}" style="width:{width:.1f}%"></span>'


def _groups(groups: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    out: list[str] = []
    for key, values in groups.items():
        top = max([v.get(s) or 0.0 for v in values.values() for s in ("base_wer", "tuned_wer")] + [1e-9])
        rows = []
        for value, g in values.items():
            rel = g.get("relative_change_pct")
            rows.append(
                [
                    _e(value),
                    _num(str(g.get("n", ""))),
                    _num(_pct(g.get("base_wer"))),
                    _num(_pct(g.get("tuned_wer")), cls=_cls(rel)),
                    _num(f"{rel:+.2f} %" if isinstance(rel, (int, float)) else "n/a"),
                    f'<td style="width:14rem">{_bar(g.get("base_wer"), top, "base")}<br>'
                    f"{_bar(g.get('tuned_wer'), top, 'tuned')}</td>",
                ]
            )
        out += [
            f"<h2>WER by {_e(key)}</h2>",
            _table([key, "n", "base", "tuned", "change", "bars: base (top), tuned"], rows, f"group-{key}"),
        ]
    return "\n".join(out)


def _utterances(title: str, pairs: Sequence[Mapping[str, Any]], normalizer: str, ident: str) -> str:
    if not pairs:
        return ""
    rows = []
    for p in pairs:
        ref = str(p.get("ref", ""))
        rows.append(
            [
                _e(p.get("id", "")),
                f"{_e(ref)}<br><span class='meta'>{_e(', '.join(f'{k}={v}' for k, v in (p.get('meta') or {}).items()))}</span>",
                _num(_pct(p.get("base_wer"))),
                _alignment(ref, str(p.get("base_hyp", "")), normalizer),
                _num(_pct(p.get("tuned_wer"))),
                _alignment(ref, str(p.get("tuned_hyp", "")), normalizer),
            ]
        )
    legend = (
        '<p class="legend meta"><span class="s">ref &rarr; hyp: substitution</span>'
        '<span class="d">deletion</span><span class="i">+insertion</span> (on normalized text)</p>'
    )
    header = ["id", "reference", "base WER", "base alignment", "tuned WER", "tuned alignment"]
    return f"<h2>{_e(title)}</h2>{legend}" + _table(header, rows, ident)


def _plots(plots: Mapping[str, Path]) -> str:
    out = []
    for name, path in plots.items():
        p = Path(path)
        if p.is_file():
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            out.append(f'<h2>{_e(name)}</h2><img alt="{_e(name)}" src="data:image/png;base64,{data}">')
    return "\n".join(out)


def _substitutions(d: Mapping[str, Any]) -> str:
    out = []
    for name in ("base", "tuned"):
        subs = (d.get(name) or {}).get("top_substitutions") or []
        if subs:
            rows = [[_e(s.get("ref")), _e(s.get("hyp")), _num(str(s.get("count")))] for s in subs[:10]]
            out += [
                f"<h2>Most frequent substitutions ({name})</h2>",
                _table(["reference", "hypothesis", "count"], rows),
            ]
    return "\n".join(out)


def render_report_html(report: Mapping[str, Any], plots: Mapping[str, Path] | None = None) -> str:
    """The page for ``report`` (the dict ``report.json`` holds); ``plots``: title -> PNG file."""
    b, t = report.get("base") or {}, report.get("tuned") or {}
    normalizer = str(b.get("normalizer") or "whisper_en")
    n_reg = report.get("regressed", 0)
    body = [
        "<h1>Base vs tuned</h1>",
        f'<p class="meta">base <code>{_e(b.get("model", "?"))}</code> &middot; tuned '
        f"<code>{_e(t.get('model', '?'))}</code> &middot; data <code>{_e(b.get('data', '?'))}</code> "
        f"&middot; normalizer <code>{_e(normalizer)}</code></p>",
        f"<p><strong>{_e(report.get('wer_difference_line', ''))}</strong> (relative change of "
        f"normalized WER, tuned vs base; negative = tuned better)<br>{_e(report.get('ci_line', ''))}</p>",
        _verdict(report),
        _headline(report),
        _selection(report.get("selection")),
        _details(report),
        _groups(report.get("groups") or {}),
        _plots(plots or {}),
        _utterances(
            f"Worst {len(report.get('worst') or [])} utterances (tuned)",
            report.get("worst") or [],
            normalizer,
            "worst",
        ),
        _utterances(
            f"Regressions ({n_reg} utterances worse than base; largest shown)",
            report.get("regressions") or [],
            normalizer,
            "regressions",
        ),
        _substitutions(report),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>whisper-tune report: {_e(report.get('wer_difference_line', 'base vs tuned'))}</title>"
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(x for x in body if x) + "\n</body></html>\n"
    )


def write_report_html(
    report: Mapping[str, Any], out_dir: str | Path, plots: Mapping[str, Path] | None = None
) -> Path:
    """Write ``out_dir/report.html``; returns its path."""
    path = Path(out_dir) / REPORT_HTML
    path.write_text(render_report_html(report, plots), encoding="utf-8")
    return path
