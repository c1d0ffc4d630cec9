"""The study's answer from a results folder: `analyze` computes it; text, JSON, Markdown and a
self-contained HTML page show it, each opening with the answer in words (analysis/answer.py) and the
study's claims checked (analysis/claims.py), then the details.

`write_report(analysis)` writes `<results>/report/`: `report.md`, `report.html` (from the Jinja2
templates in `templates/`: every figure embedded as a base64 PNG, every string from data or config
escaped by the template engine, never assembled in Python), the figures as PNG
files, and `trials.csv` / `epochs.csv` (the tidy tables). A figure with nothing to show is
replaced by a sentence saying why.

Example:
    >>> analysis = analyze(load_results("results/quickstart"))  # doctest: +SKIP
    >>> print(format_summary(analysis))  # doctest: +SKIP
    >>> write_report(analysis)  # doctest: +SKIP
    'results/quickstart/report'

Over 400 lines on purpose: one `Analysis` rendered five ways (text, JSON, tables, Markdown, HTML) from
the same tables, so the five cannot disagree.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from sweetspot import storage
from sweetspot.analysis import figures, live
from sweetspot.analysis.answer import answer
from sweetspot.analysis.baselines import Baselines, compute_baselines
from sweetspot.analysis.claims import Claim, check_claims
from sweetspot.analysis.collapse import CollapseReport, diagnose_collapse, read_labels
from sweetspot.analysis.export import csv_bytes
from sweetspot.analysis.importance import Importances, param_importances
from sweetspot.analysis.live import PartialState
from sweetspot.analysis.results import Results, epoch_table, finite, trial_table
from sweetspot.analysis.sweetspot import DEFAULT_DELTA, SweetSpots, compare_at_budget, find_sweet_spots, search_setting
from sweetspot.analysis.words import BEST_RUN, CONFIG_SCORE, CONFIG_SCORE_WHAT, lr_text, next_trials, region_text
from sweetspot.trainable import keys

REPORT_DIR = "report"
MAX_CENSORED_LINES = 10  # censored trials listed in the text summary (all are in trials.csv and the JSON)


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows about one results folder."""

    results: Results
    spots: SweetSpots
    collapse: CollapseReport
    importances: Importances
    baselines: Baselines | None
    baselines_note: str | None  # why there are no baselines
    claims: tuple[Claim, ...] = ()  # the study's claims checked on these results (analysis/claims.py)


def _rule_text(s: SweetSpots) -> str:
    """How the threshold was set, in words."""
    if s.rule == "trains":
        return f"trains: >= (1 + δ) × the majority-label floor + margin {s.floor:.4f}, δ={s.delta:g}"
    return f"near-best: within δ={s.delta:g} of the best configuration"


def analyze(
    results: Results, *, delta: float | None = None, epoch: float | None = None, baselines: bool = True, rule: str = "trains"
) -> Analysis:
    """Sweet spots, collapse diagnosis, importances and (with `baselines`) the reference
    predictors of `results`, compared on `results.metric`.

    Args:
        results: From `load_results` (its `metric`/`mode` are what is compared).
        delta: Sweet-spot margin: over the majority-label floor (`rule="trains"`), or to the best
            configuration (`rule="near-best"`); relative. Default: the δ the region search used
            (`search.edges.delta`, when the folder records it), else `DEFAULT_DELTA`.
        epoch: Compare trials at this epoch instead of the budget (`train.epochs`).
        rule: The sweet-spot threshold rule (`analysis.sweetspot.RULES`).
        baselines: Compute (or read from their cache) the majority and TF-IDF baselines.
    """
    if delta is None:
        delta = search_setting(results, "delta")
        delta = DEFAULT_DELTA if delta is None else delta
    spots = find_sweet_spots(results, delta=delta, epoch=epoch, rule=rule)
    labels, majority = read_labels(results.prepared_path)
    collapse = diagnose_collapse(results, labels=labels, majority_label=majority, until=spots.comparison.epoch)
    importances = param_importances(results, spots.comparison)
    base, note = None, None
    if not baselines:
        note = "not computed (--no-baselines)"
    elif not results.prepared_path:
        note = "the results folder records no prepared data (sweetspot.yaml has no prepared_path)"
    else:
        try:
            base = compute_baselines(results.prepared_path)
        except FileNotFoundError as e:
            note = f"prepared data not available: {e}"
    claims = check_claims(results, delta=delta, epoch=epoch, labels=labels, majority_label=majority, spots=spots)
    return Analysis(results, spots, collapse, importances, base, note, claims)


# ------------------------------------------------------------------------------------------------
# Text and JSON


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else "-"


def format_table(results: Results) -> str:
    """A table of trials sorted by their best metric, each with its score at the budget
    (trainable/score.py), with the majority-label floor under it."""
    metric = results.metric
    scores = compare_at_budget(results, metric=metric, mode=results.mode).scores
    header = f"{'trial_id':<12} {'status':<14} {'optimizer':<9} {'lr':>9} {'wd':>8} {'epochs':>6} {'score':>8}"
    lines = [header, "-" * len(header)]
    for t in results.ranked():
        c = t.config
        best = scores[t.trial_id].value
        lines.append(
            f"{t.trial_id:<12} {t.status:<14} {str(c.get('optimizer', '-')):<9} {_fmt(c.get('lr'), '9.2e')} "
            f"{_fmt(c.get('weight_decay'), '8.2g')} {t.epochs:>6} {_fmt(best, '.4f'):>8}"
        )
    floor = results.majority_p1
    lines.append("")
    lines.append(f"{len(results.trials)} trials in {results.folder}")
    if floor is not None:
        lines.append(
            f"majority-label floor ({keys.MAJORITY_P1}, validation P@1 of always predicting the most frequent train label): {floor:.4f}"
        )
    return "\n".join(lines)


def _interval_text(i) -> str:
    return f"lr {region_text(i)}; best lr {lr_text(i.best_lr)}, {CONFIG_SCORE} {i.best_value:.4f}, {i.n_trials} run(s)"


def _score_text(score) -> str:
    """A trial's score at the comparison epoch, or why it has none."""
    if score.outcome == "censored":
        rank = f", rank {score.rank} of {score.rank_of} there" if score.rank else ""
        return f"censored: {score.reason}{rank}"
    if score.outcome == "failed":
        return f"failed: {score.reason}"
    return _fmt(score.value, ".4f")


def _label_text(label) -> str:
    return f"{label.name} (id {label.id})" if label.name is not None else f"label id {label.id}"


def format_summary(analysis: Analysis) -> str:
    """Sweet spots, collapsed and diverged trials, importances and baselines, as text lines."""
    s, lines = analysis.spots, []
    lines.append(f"compared at: {s.comparison.rule}")
    if s.best is not None:
        lines.append(
            f"best configuration: {s.best.optimizer} lr={lr_text(s.best.lr)} wd={s.best.weight_decay:g} "
            f"{CONFIG_SCORE} {s.best.value:.4f} ({s.best.n_trials} run(s)); threshold {s.threshold:.4f} "
            f"({_rule_text(s)})"
        )
    if s.note:
        lines.append(f"no sweet spot: {s.note}")
    for spot in s.optimizers:
        for i in spot.intervals:
            lines.append(f"sweet spot {spot.optimizer}: {_interval_text(i)}")
        for i in spot.well:
            lines.append(f"trains well {spot.optimizer} ({CONFIG_SCORE} >= {spot.well_level:.4f}): lr {region_text(i)}")
        if not spot.intervals:
            lines.append(f"sweet spot {spot.optimizer}: {s.verdict_text(spot)}")
    censored = s.comparison.censored
    by_id = {t.trial_id: t for t in analysis.results.trials}
    for score in censored[:MAX_CENSORED_LINES]:
        p = analysis.results.params(by_id[score.trial_id])
        lines.append(
            f"censored {score.trial_id}: {p['optimizer']} lr={lr_text(p['lr'])} {_score_text(score).removeprefix('censored: ')}"
        )
    if len(censored) > MAX_CENSORED_LINES:
        lines.append(f"... and {len(censored) - MAX_CENSORED_LINES} more censored trials (trials.csv)")
    for region in s.regions:
        b = region.bounds
        lines.append(
            f"lr × weight decay {region.optimizer}: "
            + (
                f"lr {lr_text(b['lr_low'])} .. {lr_text(b['lr_high'])}, weight decay {b['weight_decay_low']:g} .. {b['weight_decay_high']:g}"
                if b
                else "no sweet region"
            )
        )
    for c in analysis.collapse.collapsed:
        onto = "onto " + (", ".join(_label_text(x) for x in c.labels) or "unknown label")
        if c.kind == "nothing predicted":
            onto = (
                "nothing predicted (every probability below 0.5; its top label"
                + (f", {_label_text(c.noise_label)}," if c.noise_label else "")
                + " is noise)"
            )
        elif c.kind == "unknown kind":
            onto += " (kind unknown: no val_top_margin recorded)"
        lines.append(
            f"collapsed {c.trial_id}: from epoch {c.first_epoch:g}, {'recovered' if c.recovered else 'stayed collapsed'}, {onto}"
        )
    lines.append(f"collapse: {analysis.collapse.count().text()}")
    for d in analysis.collapse.diverged:
        lines.append(
            f"diverged {d.trial_id}: {d.config.get('optimizer')} lr={lr_text(d.config.get('lr'))} at epoch {_fmt(d.epoch, 'g')}"
        )
    imp = analysis.importances
    if imp.available:
        lines.append("importance (PED-ANOVA): " + ", ".join(f"{k} {v:.2f}" for k, v in imp.ped_anova.items()))
        lines.append("importance (fANOVA):    " + ", ".join(f"{k} {v:.2f}" for k, v in imp.fanova.items()))
    else:
        lines.append(f"importance: not computed ({imp.reason})")
    if analysis.baselines is not None:
        for name, values in (("majority-label", analysis.baselines.majority), ("TF-IDF + linear", analysis.baselines.tfidf)):
            if "validation" in values:
                lines.append(f"baseline {name}: validation P@1 {values['validation']['p1']:.4f}")
    else:
        lines.append(f"baselines: {analysis.baselines_note}")
    return "\n".join(lines)


def format_answer(analysis: Analysis, width: int = 110) -> str:
    """What the report opens with, as text: the answer in words, then the study's claims checked."""
    lines = [
        "THE ANSWER",
        *(textwrap.fill(line, width, initial_indent="  ", subsequent_indent="      ") for line in answer(analysis).lines()),
        "",
        "THE STUDY'S CLAIMS, CHECKED HERE",
    ]
    for c in analysis.claims:
        lines.append(f"  ({c.number}) {c.claim}: {c.verdict.upper()}")
        lines.append(textwrap.fill(c.evidence, width, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def _plain(x: Any) -> Any:
    """JSON-safe: dataclasses to dicts, NaN/inf to None, tuples to lists."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_json(analysis: Analysis, *, report: str | None = None) -> dict[str, Any]:
    """The machine-readable summary printed by `sweetspot analyze --json`."""
    results, s = analysis.results, analysis.spots
    trials = []
    for t in results.ranked():
        score = s.comparison.scores[t.trial_id]
        c = analysis.collapse.of(t.trial_id)
        trials.append(
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "config": t.config,
                "epochs": t.epochs,
                "history": t.history,
                "error": t.error,
                "params": results.params(t),
                "score": _plain(score.value),
                "score_epoch": score.epoch,
                "outcome": score.outcome,
                "outcome_reason": score.reason,
                "rank_at_last_epoch": score.rank,
                "ranked_at_last_epoch": score.rank_of,
                "diverged": t.diverged,
                "collapsed": c.collapsed if c else None,
                "first_collapsed_epoch": c.first_epoch if c else None,
                "recovered": c.recovered if c else None,
                "collapse_kind": c.kind if c else None,
                "state": c.state if c else None,
            }
        )
    spots = {
        "metric": s.metric,
        "mode": s.mode,
        "rule": s.rule,
        "delta": s.delta,
        "threshold": s.threshold,
        "floor": s.floor,
        "compared_at_epoch": s.comparison.epoch,
        "budget": s.comparison.budget,
        "epoch_source": s.comparison.source,
        "comparison_rule": s.comparison.rule,
        "note": s.note,
        "best": _plain(s.best),
        "optimizers": [
            {
                "optimizer": o.optimizer,
                "found": o.found,
                "verdict": o.verdict,
                "verdict_text": s.verdict_text(o),
                "lrs": list(o.lrs),
                "best": _plain(o.best),
                "intervals": _plain(o.intervals),
                "trains": [region_text(i) for i in o.intervals],
                "well": [region_text(i) for i in o.well],
                "well_intervals": _plain(o.well),
                "well_level": o.well_level,
                "next_trials": [t for i in o.intervals for t in next_trials(i)],
                "config_score": _plain(o.best.value) if o.best else None,
                "censored": list(o.censored),
                "same_as": o.same_as,
            }
            for o in s.optimizers
        ],
        "config_score": CONFIG_SCORE_WHAT,
        "resolution": s.resolution,
        "well_share": s.well_share,
        "regions": [
            {"optimizer": r.optimizer, "found": r.found, "bounds": r.bounds, "slices": _plain(r.slices)} for r in s.regions
        ],
        "configs": _plain(s.configs),
    }
    opening = answer(analysis)
    return {
        "answer": {
            "compared_at": opening.compared_at,
            "optimizers": dict(opening.optimizers),
            "best": opening.best,
            "baselines": opening.baselines,
            "collapse": opening.collapse,
        },
        "collapse_count": _plain(analysis.collapse.count()),
        "claims": _plain(list(analysis.claims)),
        "folder": str(results.folder),
        "metric": results.metric,
        "mode": results.mode,
        keys.MAJORITY_P1: results.majority_p1,
        "trials": trials,
        "sweet_spots": spots,
        "collapsed": _plain(analysis.collapse.collapsed),
        "collapse_majority_label": _plain(analysis.collapse.majority_label),
        "diverged": _plain(analysis.collapse.diverged),
        "importances": _plain(analysis.importances),
        "baselines": {
            "available": analysis.baselines is not None,
            "note": analysis.baselines_note,
            **(_plain(analysis.baselines) if analysis.baselines else {}),
        },
        "report": report,
    }


# ------------------------------------------------------------------------------------------------
# Tables shared by the Markdown and HTML reports: a title, columns and rows of display strings.


@dataclass(frozen=True)
class _Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"
    note: str | None = None  # shown under the table


def _tables(analysis: Analysis) -> list[_Table]:
    results, s, collapse = analysis.results, analysis.spots, analysis.collapse
    metric = results.metric
    trials = []
    for t in results.ranked():
        p, score, c = results.params(t), s.comparison.scores[t.trial_id], collapse.of(t.trial_id)
        state = (
            "diverged"
            if t.diverged
            else (
                "-"
                if c is None
                else f"from epoch {c.first_epoch:g}" + (", recovered" if c.recovered else "")
                if c.collapsed
                else "no"
            )
        )
        if c is not None and c.state == "at the label-prior plateau":
            state += f"; {c.state} at its last evaluation"
        trials.append(
            (
                t.trial_id,
                t.status,
                str(p["optimizer"]),
                lr_text(p["lr"]),
                _fmt(p["weight_decay"], "g"),
                _fmt(p["seed"], "d") if isinstance(p["seed"], int) else str(p["seed"]),
                _fmt(t.last_epoch, "g"),
                _score_text(score),
                state,
            )
        )
    configs = {(c.optimizer, c.lr, c.weight_decay): c for c in s.configs}
    spots = []
    for o in s.optimizers:
        best = configs.get((o.best.optimizer, o.best.lr, o.best.weight_decay)) if o.best else None
        cells = (
            lr_text(best.lr) if best else "-",
            _fmt(best.value, ".4f") if best else "-",
            _fmt(best.best_run, ".4f") if best else "-",
        )
        trains = "; ".join(region_text(i) for i in o.intervals) or s.verdict_text(o)
        well = "; ".join(region_text(i) for i in o.well) or "-"
        nexts = ", ".join(t for i in o.intervals for t in next_trials(i)) or "-"
        spots.append((o.optimizer, trains, well, *cells, str(sum(i.n_trials for i in o.intervals)), nexts))
    regions = []
    for r in s.regions:
        for sl in r.slices:
            text = "; ".join(region_text(i) for i in sl.intervals)
            regions.append((r.optimizer, _fmt(sl.weight_decay, "g"), text or "none"))
    by_id = {t.trial_id: t for t in results.trials}
    collapsed = []
    for c in collapse.collapsed:
        p = results.params(by_id[c.trial_id])
        onto = ", ".join(_label_text(x) for x in c.labels) or "unknown"
        if c.kind == "nothing predicted":
            onto = f"nothing predicted (noise top label: {_label_text(c.noise_label) if c.noise_label else 'none'})"
        collapsed.append(
            (
                c.trial_id,
                str(p["optimizer"]),
                lr_text(p["lr"]),
                _fmt(p["weight_decay"], "g"),
                _fmt(c.first_epoch, "g"),
                "yes" if c.recovered else "no",
                c.kind or "-",
                onto,
                "-" if c.onto_majority is None else ("yes" if c.onto_majority else "no"),
            )
        )
    diverged = [
        (
            d.trial_id,
            str(d.config.get("optimizer")),
            lr_text(d.config.get("lr")),
            _fmt(d.config.get("weight_decay"), "g"),
            _fmt(d.epoch, "g"),
        )
        for d in collapse.diverged
    ]
    imp = analysis.importances
    importances = [(k, _fmt(imp.ped_anova.get(k), ".3f"), _fmt(imp.fanova.get(k), ".3f")) for k in imp.params]
    base = []
    if analysis.baselines is not None:
        for name, values in (
            ("majority-label predictor", analysis.baselines.majority),
            ("TF-IDF (token ids) + one-vs-rest linear SVM", analysis.baselines.tfidf),
        ):
            for split, v in values.items():
                base.append((name, split, _fmt(v.get("p1"), ".4f"), _fmt(v.get("p3"), ".4f"), _fmt(v.get("p5"), ".4f")))
    if s.best is not None:  # the best configuration's best trial, at the epoch it is scored by
        trial_id = max(
            s.best.trial_ids, key=lambda i: s.comparison.scores[i].value if finite(s.comparison.scores[i].value) else -math.inf
        )
        epoch = s.comparison.scores[trial_id].epoch
        at = next((r for r in by_id[trial_id].history if r.get(keys.EPOCH) == epoch), {})
        base.append(
            (
                f"best configuration's best run ({s.best.optimizer} lr={lr_text(s.best.lr)}, trial {trial_id}, "
                f"epoch {_fmt(epoch, 'g')})",
                "validation",
                *(_fmt(at.get(k), ".4f") for k in (keys.VAL_P1, keys.VAL_P3, keys.VAL_P5)),
            )
        )
    return [
        _Table(
            "Trials",
            (
                "trial",
                "status",
                "optimizer",
                "lr",
                "weight decay",
                "seed",
                "epochs",
                f"score (best {metric} over epoch ends ≤ {s.comparison.epoch:g})",
                "collapsed",
            ),
            tuple(trials),
        ),
        _Table(
            "Sweet spots",
            (
                "optimizer",
                "trains",
                f"trains well ({s.well_share:.0%} of its best gain)",
                "best lr",
                CONFIG_SCORE,
                BEST_RUN,
                "runs in the region",
                "one more trial at",
            ),
            tuple(spots),
            note=f"At epoch {s.comparison.epoch:g}: {s.comparison.rule}. {CONFIG_SCORE}: {CONFIG_SCORE_WHAT}; "
            f"{BEST_RUN}: the best of its runs' scores. An edge is resolved when the sampled lrs either side of it "
            f"are at most {s.resolution:g} decade apart. {analysis.collapse.count().text()}.",
        ),
        _Table(
            "lr × weight decay regions",
            ("optimizer", "weight decay", "lr intervals"),
            tuple(regions),
            "no optimizer was searched at more than one weight decay",
        ),
        _Table(
            "Collapsed runs",
            (
                "trial",
                "optimizer",
                "lr",
                "weight decay",
                "first epoch",
                "recovered",
                "kind",
                "collapsed onto",
                "most frequent training label",
            ),
            tuple(collapsed),
            "no trial collapsed",
        ),
        _Table("Diverged runs", ("trial", "optimizer", "lr", "weight decay", "epoch"), tuple(diverged), "no trial diverged"),
        _Table(
            "Importances",
            ("parameter", "PED-ANOVA", "fANOVA"),
            tuple(importances),
            f"not computed: {imp.reason}" if not imp.available else "none",
            f"{imp.n_trials} completed trials; PED-ANOVA target quantile {_fmt(imp.target_quantile, 'g')}."
            + "".join(f" {n}." for n in imp.notes)
            if imp.available
            else None,
        ),
        _Table(
            "Baselines", ("predictor", "split", "P@1", "P@3", "P@5"), tuple(base), f"not available: {analysis.baselines_note}"
        ),
    ]


# ------------------------------------------------------------------------------------------------
# Figures


FIGURES: tuple[tuple[str, str, str], ...] = (  # (file, letter, title)
    ("fig_a_optimizers.png", "a", "Optimizer comparison: the best run per optimizer"),
    ("fig_b_per_optimizer.png", "b", "Per optimizer: loss and metric per epoch for each learning rate"),
    ("fig_c_weight_decay.png", "c", "Adam vs AdamW: weight-decay ablation"),
    ("fig_d_sweet_spots.png", "d", "Sweet spots: best metric vs learning rate"),
    ("fig_e_collapse.png", "e", "Collapse: prediction entropy per epoch"),
    ("fig_f_attention.png", "f", "Attention heat maps: a collapsed and a healthy checkpoint"),
)


def _baseline_split(metric: str) -> tuple[str, str] | None:
    """The baselines' split and key for a P@k metric: `val_p1` -> (validation, p1), `test_p3` -> (test, p3)."""
    for prefix, split in (("val_", "validation"), (keys.TEST_PREFIX, "test")):
        k = metric.removeprefix(prefix)
        if metric.startswith(prefix) and k in ("p1", "p3", "p5"):
            return split, k
    return None


def _baseline_lines(analysis: Analysis) -> dict[str, float]:
    """Reference lines for the sweet-spot chart: the baselines' value of the compared metric."""
    where = _baseline_split(analysis.spots.metric)
    if analysis.baselines is None or where is None:
        return {}
    return {"TF-IDF + linear": analysis.baselines.tfidf.get(where[0], {}).get(where[1], math.nan)}


def _floor_line(analysis: Analysis) -> float | None:
    where = _baseline_split(analysis.spots.metric)
    if analysis.baselines is not None and where is not None:
        return analysis.baselines.majority.get(where[0], {}).get(where[1])
    return analysis.results.majority_p1 if analysis.spots.metric == keys.VAL_P1 else None


def _figures(analysis: Analysis, attention: bool) -> dict[str, figures.Figure]:
    r, s, c = analysis.results, analysis.spots, analysis.collapse
    makers: dict[str, Callable[[], figures.Figure]] = {
        "a": lambda: figures.fig_optimizers(r, s),
        "b": lambda: figures.fig_per_optimizer(r, s.metric),
        "c": lambda: figures.fig_weight_decay(s),
        "d": lambda: figures.fig_sweet_spots(r, s, _baseline_lines(analysis), _floor_line(analysis)),
        "e": lambda: figures.fig_collapse(r, c),
        "f": (lambda: figures.fig_attention(r, s, c))
        if attention
        else (lambda: figures.Figure(None, "not drawn (--no-attention)")),
    }
    return {letter: makers[letter]() for _, letter, _ in FIGURES}


# ------------------------------------------------------------------------------------------------
# Markdown and HTML


TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data (pyproject.toml)


class _Raw(str):
    """Markdown text a template shows as is (a code block's content)."""


def _md_cell(text: Any) -> str:
    """Any value shown in the Markdown report: HTML-escaped, `|` escaped, on one line."""
    if isinstance(text, _Raw):
        return str(text)
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _code_block(text: str) -> _Raw:
    return _Raw(text.replace("```", "'''"))  # a code block shows data literally; keep it closed


# Every value a template prints is escaped: by Jinja2's autoescape in HTML, by `_md_cell` (finalize) in Markdown.
_HTML = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_MARKDOWN = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,
    finalize=_md_cell,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_MARKDOWN.filters["code"] = _code_block

_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.25em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:1em;overflow-x:auto}
.missing{background:#fff7e0;border-left:4px solid #e0a000;padding:.6em 1em}.note{color:#555;font-size:13px}
.answer{display:flex;gap:1.5em;align-items:flex-start}.answer ul{flex:1 1 45%;margin:0;padding-left:1.2em;font-size:14px}
.answer li{margin:.25em 0}.answer img{flex:1 1 50%;max-width:55%}
.verdict.reproduced{background:#e6f4e6}.verdict.contradicted{background:#fbe3e3}.verdict.partly{background:#fff4d6}
img{height:auto}table{display:block;max-width:100%;overflow-x:auto}code{overflow-wrap:anywhere}
@media (max-width:700px){body{margin:.5em auto;padding:0 .6em}h1{font-size:1.2em}h2{font-size:1.05em}
.answer{flex-direction:column;gap:.8em}.answer ul,.answer img{flex:none;max-width:100%}
table{font-size:12px}th,td{padding:2px 5px}pre{font-size:11px}}"""


def _rule_words(s: SweetSpots) -> str:
    if s.threshold is None:
        return f"{s.metric} clears a level set from the configurations scored at the budget (none is, so far)"
    if s.rule == "trains" and s.floor is not None:
        return (
            f"a configuration's {CONFIG_SCORE} ({s.metric}) beats the majority-label floor + margin ({s.floor:.3f}) by "
            f"δ = {s.delta:g}: >= {s.threshold:.3f}; it trains well where its gain over that floor is at least "
            f"{s.well_share:.0%} of the optimizer's best"
        )
    return f"{s.metric} is within δ = {s.delta:g} of the best configuration"


def _context(analysis: Analysis, figs: dict[str, figures.Figure], tables: list[_Table], summary: str) -> dict[str, Any]:
    """What both templates show (raw values: each template escapes them its own way)."""
    r, s = analysis.results, analysis.spots
    shown = {
        letter: {
            "letter": letter,
            "title": title,
            "file": file,
            "note": figs[letter].note,
            "data": base64.b64encode(figs[letter].png).decode("ascii") if figs[letter].png else None,
        }
        for file, letter, title in FIGURES
    }
    return {
        "name": str(r.config.get("name") or r.folder),
        "folder": str(r.folder),
        "n_trials": len(r.trials),
        "metric": s.metric,
        "mode": s.mode,
        "delta": f"{s.delta:g}",
        "epoch": f"{s.comparison.epoch:g}",
        "compared_at": s.comparison.rule,
        "answer": answer(analysis),
        "claims": analysis.claims,
        "rule_words": _rule_words(s),
        "figures": shown,
        "config_score": CONFIG_SCORE,
        "config_score_what": CONFIG_SCORE_WHAT,
        "tables": tables,
        "summary": summary,
        "generated": f"{datetime.datetime.now():%Y-%m-%d %H:%M}",
        "css": _CSS,
    }


def _markdown(analysis: Analysis, figs: dict[str, figures.Figure], tables: list[_Table], summary: str) -> str:
    return _MARKDOWN.get_template("report.md").render(_context(analysis, figs, tables, summary))


def _html(analysis: Analysis, figs: dict[str, figures.Figure], tables: list[_Table], summary: str) -> str:
    return _HTML.get_template("report.html").render(_context(analysis, figs, tables, summary))


def write_report(
    analysis: Analysis, folder: str | None = None, *, attention: bool = True, partial: PartialState | None = None
) -> str:
    """Writes the report (see the module docstring) to `folder` (default `<results>/report`);
    returns its location. `attention=False` skips figure (f), the only one that loads models.
    `partial` (a search that has not finished, analysis/live.py): the report says so."""
    r, s = analysis.results, analysis.spots
    folder = folder or storage.join(str(r.folder), REPORT_DIR)
    figs = _figures(analysis, attention)
    tables = _tables(analysis)
    summary = format_table(r) + "\n\n" + format_summary(analysis)
    for file, letter, _ in FIGURES:
        if figs[letter].png:
            storage.write_bytes(storage.join(folder, file), figs[letter].png)
    trials = trial_table(r)
    trials["score"] = [s.comparison.scores[i].value for i in trials["trial_id"]]
    trials["score_epoch_limit"] = s.comparison.epoch
    trials["outcome"] = [s.comparison.scores[i].outcome for i in trials["trial_id"]]
    trials["outcome_reason"] = [s.comparison.scores[i].reason for i in trials["trial_id"]]
    trials["rank_at_last_epoch"] = [s.comparison.scores[i].rank for i in trials["trial_id"]]
    diag = {c.trial_id: c for c in analysis.collapse.trials}
    trials["collapsed"] = [diag[i].collapsed if i in diag else None for i in trials["trial_id"]]
    trials["first_collapsed_epoch"] = [diag[i].first_epoch if i in diag else None for i in trials["trial_id"]]
    trials["recovered"] = [diag[i].recovered if i in diag else None for i in trials["trial_id"]]
    trials["collapse_kind"] = [diag[i].kind if i in diag else None for i in trials["trial_id"]]
    trials["collapsed_onto"] = [
        ";".join(_label_text(x) for x in diag[i].labels) if i in diag else None for i in trials["trial_id"]
    ]
    storage.write_bytes(storage.join(folder, "trials.csv"), csv_bytes(trials))
    storage.write_bytes(storage.join(folder, "epochs.csv"), csv_bytes(epoch_table(r)))
    markdown, page = _markdown(analysis, figs, tables, summary), _html(analysis, figs, tables, summary)
    if partial is not None:  # the live hook (analysis/live.py): banner, provisional sweet spots, reload tag
        markdown, page = live.mark_markdown(markdown, partial, s), live.mark_html(page, partial, s)
    storage.write_bytes(storage.join(folder, "report.md"), markdown.encode("utf-8"))
    storage.write_bytes(storage.join(folder, "report.html"), page.encode("utf-8"))
    return folder
