"""The answer first: what the report opens with, in words (pure Python; report.py shows it as text,
Markdown, HTML and JSON).

- per optimizer, in one line: where it *trains* and where it *trains well* (analysis/sweetspot.py's two
  nested regions), each edge in words (analysis/words.py: resolved, not resolved, open), its best
  config score, and what one more trial would test where an edge is not resolved; or `none: every lr
  tried collapsed onto <label>` (or `none: no lr tried trains`, with how many of its runs collapsed
  onto what); or `unknown: no trial reached the budget`;
- the best configuration's config score against the majority-label floor and the TF-IDF baseline;
- against the baselines: whether the best configuration beats TF-IDF + linear beyond the validation
  set's noise at P@1, P@3 and P@5 (`NOISE_TEST`), and its test metrics when `train.eval_test` is on;
- the collapse count (analysis/collapse.py's `CollapseCount`, the one figure (e) shows), and onto
  which labels (a collapse where nothing is predicted is counted apart: its top label is noise).

Example:
    >>> lines = answer(analyze(load_results("results/quickstart")))  # doctest: +SKIP
    >>> lines.optimizers[0]  # doctest: +SKIP
    ('adam', 'trains at 1.0e-05 (±0.25 decade) .. between 3.2e-04 and 1.0e-03 (not resolved), 1.5 decades; ...')
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sweetspot import storage
from sweetspot.analysis.collapse import NOTHING_PREDICTED, UNKNOWN_KIND, Label
from sweetspot.analysis.results import finite
from sweetspot.analysis.sweetspot import FAILED, SCORED, ConfigScore
from sweetspot.analysis.words import CONFIG_SCORE, lr_text, next_trials, region_text
from sweetspot.trainable import keys

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval
NOISE_TEST = (
    "95 % Wilson interval of the best configuration's P@k as a proportion over the n validation documents; "
    "it beats TF-IDF + linear beyond the noise when TF-IDF's P@k is below that interval"
)


@dataclass(frozen=True)
class Answer:
    """The report's opening: one line per optimizer, the best configuration, the baselines, the collapse count."""

    optimizers: tuple[tuple[str, str], ...]  # (optimizer, its verdict in words)
    best: str
    collapse: str
    compared_at: str  # the comparison epoch in a few words
    baselines: str = ""  # the best configuration against TF-IDF + linear, beyond the validation set's noise or not

    def lines(self) -> list[str]:
        return (
            [f"compared at {self.compared_at}"]
            + [f"{o}: {text}" for o, text in self.optimizers]
            + [f"best: {self.best}", f"baselines: {self.baselines}", f"collapse: {self.collapse}"]
        )


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion `p` over `n` trials.

    Example:
        >>> [round(x, 3) for x in wilson(0.48, 300)]
        [0.424, 0.536]
    """
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def label_name(label: Label | None) -> str:
    if label is None:
        return "an unrecorded label"
    return f"{label.name} (id {label.id})" if label.name is not None else f"label id {label.id}"


def _onto_text(labels: Counter, majority: Label | None) -> str:
    """ "neutral (id 27, the most frequent training label) ×12, anger (id 3) ×1"."""
    out = []
    for label, n in labels.most_common():
        name = label_name(label)
        if majority is not None and label is not None and label.id == majority.id:
            name = name[:-1] + ", the most frequent training label)"
        out.append(f"{name} ×{n}")
    return ", ".join(out)


def _found_text(spot: Any, s: Any) -> str:
    """One line: the trains region(s), the trains-well region(s), the best config score, the next trial."""
    trains = "; ".join(region_text(i) for i in spot.intervals)
    out = f"trains at {trains}"
    if spot.well_level is not None:
        well = "; ".join(region_text(i) for i in spot.well) or "nowhere"
        out += (
            f"; trains well ({CONFIG_SCORE} >= {spot.well_level:.3f}, {s.well_share:.0%} of its best gain over the floor) "
            f"at {well}"
        )
    best = spot.best
    out += f"; best {CONFIG_SCORE} {best.value:.3f} at {lr_text(best.lr)}" if best is not None and finite(best.value) else ""
    tests = [t for i in spot.intervals for t in next_trials(i)]
    if tests:
        out += f"; one more trial at {', '.join(tests)} would test " + ("it" if len(tests) == 1 else "them")
    return out


def _runs_at_score(analysis: Any, config: ConfigScore) -> list[dict[str, Any]]:
    """The rows a configuration's scored runs are scored at (their score's epoch end)."""
    by_id, scores = {t.trial_id: t for t in analysis.results.trials}, analysis.spots.comparison.scores
    rows = []
    for trial_id in config.trial_ids:
        score = scores[trial_id]
        if score.outcome == SCORED and score.epoch is not None:
            rows += [r for r in by_id[trial_id].history if finite(r.get(keys.EPOCH)) and abs(r[keys.EPOCH] - score.epoch) < 1e-3][
                -1:
            ]
    return rows


def _seeds(values: list[float]) -> float:
    """mean − std, as the config score aggregates its runs."""
    return statistics.fmean(values) - (statistics.stdev(values) if len(values) > 1 else 0.0)


def validation_size(prepared_path: str | None) -> int | None:
    """The validation documents the runs were scored on (the prepared data's manifest)."""
    text = storage.read_text(storage.join(prepared_path, "manifest.json")) if prepared_path else None
    rows = (json.loads(text).get("splits", {}).get("validation", {}) or {}).get("rows") if text else None
    return int(rows) if finite(rows) and rows > 0 else None


def baselines_text(analysis: Any) -> str:
    """The best configuration against TF-IDF + linear (`NOISE_TEST`), and its test metrics."""
    b = analysis.spots.best
    if b is None:
        return "no configuration scored at the budget"
    rows = _runs_at_score(analysis, b)
    test = [k for k in ("p1", "p3", "p5") if rows and all(finite(r.get(keys.TEST_PREFIX + k)) for r in rows)]
    tested = (
        (
            "; test (train.eval_test, mean − std of its runs at their scored epochs): "
            + ", ".join(f"P@{k[1]} {_seeds([r[keys.TEST_PREFIX + k] for r in rows]):.3f}" for k in test)
        )
        if test
        else ""
    )
    tfidf = analysis.baselines.tfidf.get("validation", {}) if analysis.baselines is not None else {}
    if not tfidf:
        return f"TF-IDF + linear {analysis.baselines_note or 'not computed'}: no comparison" + tested
    n = validation_size(analysis.results.prepared_path)
    parts, beats, below = [], [], []
    for k in ("p1", "p3", "p5"):
        values = [r[f"val_{k}"] for r in rows if finite(r.get(f"val_{k}"))]
        ref = tfidf.get(k)
        if not values or not finite(ref):
            continue
        mine = _seeds(values)
        if n is None:
            parts.append(f"P@{k[1]} {mine:.3f} vs {ref:.3f}")
            continue
        lo, hi = wilson(min(max(mine, 0.0), 1.0), n)
        (beats if lo > ref else below if hi < ref else []).append(f"P@{k[1]}")
        parts.append(f"P@{k[1]} {mine:.3f} [{lo:.3f}, {hi:.3f}] vs {ref:.3f}")
    if n is None:
        return (
            "best configuration vs TF-IDF + linear (validation; its size is not recorded: no noise test): "
            + "; ".join(parts)
            + tested
        )
    verdict = (
        "beats TF-IDF + linear beyond the validation set's noise at P@1"
        if "P@1" in beats
        else "does not beat TF-IDF + linear beyond the validation set's noise" + (" (below it at P@1)" if "P@1" in below else "")
    )
    if below and "P@1" not in below:
        verdict += f"; below it at {', '.join(below)}"
    return (
        f"the best configuration {verdict} (validation, n = {n}; 95 % Wilson interval of its {CONFIG_SCORE}s): "
        + "; ".join(parts)
        + tested
    )


def answer(analysis: Any) -> Answer:
    """The opening of the report for `analysis` (a `report.Analysis`)."""
    r, s, c = analysis.results, analysis.spots, analysis.collapse
    at = s.comparison.epoch
    majority = c.majority_label
    diag = {t.trial_id: t for t in c.trials}
    diverged_ids = {d.trial_id for d in c.diverged}

    def final_state(trial_id: str) -> tuple[str, Label | None] | None:
        """("onto", label) / ("nothing", None) / ("unknown", label) when the trial's last evaluation up to
        the comparison epoch is collapsed, else None."""
        d = diag.get(trial_id)
        if d is None or not d.final_collapsed:
            return None
        if d.kind == NOTHING_PREDICTED:
            return "nothing", None
        return ("unknown" if d.kind == UNKNOWN_KIND else "onto"), (d.last_top or (d.labels[0] if d.labels else None))

    optimizers = []
    for spot in s.optimizers:
        if spot.same_as:
            optimizers.append(
                (spot.optimizer, f"as {spot.same_as}: not run, its updates are {spot.same_as}'s at this weight decay")
            )
            continue
        if spot.intervals:
            optimizers.append((spot.optimizer, _found_text(spot, s)))
            continue
        if spot.verdict == "unknown":
            optimizers.append((spot.optimizer, f"unknown: no trial reached the budget ({at:g} epochs)"))
            continue
        mine = [
            t.trial_id
            for t in r.trials
            if str(r.params(t)["optimizer"]) == spot.optimizer and s.comparison.scores[t.trial_id].outcome in (SCORED, FAILED)
        ]
        diverged = sum(1 for i in mine if i in diverged_ids)
        states = [final_state(i) for i in mine if i not in diverged_ids]
        plateau = sum(1 for i in mine if i in diag and diag[i].state == "at the label-prior plateau")
        labels = Counter(st[1] for st in states if st and st[0] != "nothing")
        nothing = sum(1 for st in states if st and st[0] == "nothing")
        collapsed = sum(1 for st in states if st)
        also = f" ({diverged} diverged)" if diverged and states else ""
        if mine and not states:
            text = "none: every lr tried diverged"
        elif all(states) and not nothing and len(labels) == 1:
            text = f"none: every lr tried collapsed onto {label_name(next(iter(labels)))}{also}"
        elif all(states) and nothing == len(states):
            text = f"none: every lr tried collapsed with nothing predicted{also}"
        else:
            best = (
                f"best {CONFIG_SCORE} {spot.best.value:.3f} at {lr_text(spot.best.lr)}"
                if spot.best and finite(spot.best.value)
                else "nothing scored"
            )
            level = f" against the level {s.threshold:.3f}" if s.threshold is not None else ""
            text = (
                f"none: no lr tried trains ({best}{level}); {collapsed} of {len(mine)} runs collapsed"
                + (f" (onto {_onto_text(labels, majority)})" if labels else "")
                + (f", {nothing} with nothing predicted" if nothing else "")
                + (f", {plateau} at the label-prior plateau" if plateau else "")
                + (f", {diverged} diverged" if diverged else "")
            )
        optimizers.append((spot.optimizer, text))
    floor = r.majority_p1
    tfidf = None
    if analysis.baselines is not None:
        tfidf = analysis.baselines.tfidf.get("validation", {}).get("p1")
    refs = (
        (f"the majority-label floor {floor:.3f}" if floor is not None else "no majority-label floor recorded")
        + ", "
        + (f"TF-IDF + linear SVM {tfidf:.3f}" if finite(tfidf) else f"TF-IDF {analysis.baselines_note or 'not computed'}")
    )
    if s.best is not None:
        b = s.best
        best = (
            f"{b.optimizer} lr {lr_text(b.lr)}"
            + (f" weight decay {b.weight_decay:g}" if b.weight_decay else "")
            + f": {CONFIG_SCORE} {b.value:.3f} ({s.metric}, {b.n_trials} run{'s' if b.n_trials > 1 else ''}), against {refs}"
        )
    else:
        best = f"no configuration scored at the budget; {refs}"
    count = c.count()
    final = [st for st in (final_state(t.trial_id) for t in c.trials) if st]
    labels = Counter(st[1] for st in final if st[0] != "nothing")
    nothing = sum(1 for st in final if st[0] == "nothing")
    unknown = sum(1 for st in final if st[0] == "unknown")
    parts = ([f"onto {_onto_text(labels, majority)}"] if labels else []) + (
        [f"{nothing} with nothing predicted (every probability below 0.5: their top label is noise)"] if nothing else []
    )
    collapse = count.text("; ".join(parts)) + (
        f"; kind unknown for {unknown} (no {keys.VAL_TOP_MARGIN} recorded)" if unknown else ""
    )
    if not any(finite(row.get(keys.VAL_EMBED_RANK)) for t in r.trials for row in t.history):
        collapse += f" (no {keys.VAL_EMBED_RANK} recorded: collapsed = constant predictions at the floor)"
    return Answer(
        optimizers=tuple(optimizers),
        best=best,
        collapse=collapse,
        baselines=baselines_text(analysis),
        compared_at=f"epoch {at:g}" + (" (the budget)" if s.comparison.source == "budget" else ""),
    )
