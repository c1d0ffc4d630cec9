"""The answer first: what the report opens with, in words (pure Python; report.py shows it as text,
Markdown, HTML and JSON).

- per optimizer, its sweet spot in lr with each edge's resolution and its best score (a configuration's
  seeds, mean − std); or `none: every lr tried collapsed
  onto <label>` (or `none: no lr tried trains`, with how many of its runs collapsed onto what); or
  `unknown: no trial reached the budget`;
- the best configuration against the majority-label floor and the TF-IDF baseline;
- the share of runs that collapsed (at their last evaluation up to the budget), and onto which labels
  (a collapse where nothing is predicted is counted apart: its top label is noise).

Example:
    >>> lines = answer(analyze(load_results("results/quickstart")))  # doctest: +SKIP
    >>> lines.optimizers[0]  # doctest: +SKIP
    ('adam', 'sweet spot lr 3.2e-05 .. 2.1e-04 (lower edge ±0.25 decade, upper edge ±0.31 decade), best score 0.512 at 1.0e-04')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sweetspot.analysis.collapse import NOTHING_PREDICTED, UNKNOWN_KIND, Label
from sweetspot.analysis.results import finite
from sweetspot.analysis.sweetspot import SCORED, FAILED
from sweetspot.trainable import keys


@dataclass(frozen=True)
class Answer:
    """The report's opening: one line per optimizer, the best configuration, the collapse share."""

    optimizers: tuple[tuple[str, str], ...]  # (optimizer, its verdict in words)
    best: str
    collapse: str
    compared_at: str  # the comparison epoch in a few words

    def lines(self) -> list[str]:
        return ([f"compared at {self.compared_at}"] + [f"{o}: {text}" for o, text in self.optimizers]
                + [f"best: {self.best}", f"collapse: {self.collapse}"])


def _lr(x: float) -> str:
    return f"{x:.1e}"


def _edges(i) -> str:
    if i.lower_open and i.upper_open:
        return ("the only lr scored at the budget: edges unknown" if i.width_decades == 0
                else "open on both sides: the whole sampled range trains")
    lower = "open below" if i.lower_open else f"lower edge ±{i.lower_resolution:.2f} decade"
    upper = "open above" if i.upper_open else f"upper edge ±{i.upper_resolution:.2f} decade"
    return f"{lower}, {upper}"


def label_name(label: Label | None) -> str:
    if label is None:
        return "an unrecorded label"
    return f"{label.name} (id {label.id})" if label.name is not None else f"label id {label.id}"


def _onto_text(labels: Counter, majority: Label | None) -> str:
    """"neutral (id 27, the most frequent training label) ×12, anger (id 3) ×1"."""
    out = []
    for label, n in labels.most_common():
        name = label_name(label)
        if majority is not None and label is not None and label.id == majority.id:
            name = name[:-1] + ", the most frequent training label)"
        out.append(f"{name} ×{n}")
    return ", ".join(out)


def answer(analysis: Any) -> Answer:
    """The opening of the report for `analysis` (a `report.Analysis`)."""
    r, s, c = analysis.results, analysis.spots, analysis.collapse
    at = s.comparison.epoch
    majority = c.majority_label
    by_id = {t.trial_id: t for t in r.trials}
    diag = {t.trial_id: t for t in c.trials}
    diverged_ids = {d.trial_id for d in c.diverged}

    def final_state(trial_id: str) -> tuple[str, Label | None] | None:
        """("onto", label) / ("nothing", None) / ("unknown", label) when the trial's last evaluation up to
        the comparison epoch is collapsed, else None."""
        d = diag.get(trial_id)
        last = _last_epoch(by_id[trial_id], at)
        if d is None or not any(abs(e - last) < 1e-9 for e in d.collapsed_epochs):
            return None
        if d.kind == NOTHING_PREDICTED:
            return "nothing", None
        return ("unknown" if d.kind == UNKNOWN_KIND else "onto"), (d.labels[0] if d.labels else None)

    optimizers = []
    for spot in s.optimizers:
        if spot.intervals:
            text = "; ".join(f"sweet spot lr {_lr(i.lower_lr)} .. {_lr(i.upper_lr)} ({_edges(i)})" for i in spot.intervals)
            best = max(spot.intervals, key=lambda i: i.best_value)
            optimizers.append((spot.optimizer, f"{text}, best score {best.best_value:.3f} at {_lr(best.best_lr)}"))
            continue
        if spot.verdict == "unknown":
            optimizers.append((spot.optimizer, f"unknown: no trial reached the budget ({at:g} epochs)"))
            continue
        mine = [t.trial_id for t in r.trials if str(r.params(t)["optimizer"]) == spot.optimizer
                and s.comparison.scores[t.trial_id].outcome in (SCORED, FAILED)]
        diverged = sum(1 for i in mine if i in diverged_ids)
        states = [final_state(i) for i in mine if i not in diverged_ids]
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
            best = f"best mean {spot.best.mean:.3f} at {_lr(spot.best.lr)}" if spot.best and finite(spot.best.mean) else "nothing scored"
            level = f" against the level {s.threshold:.3f}" if s.threshold is not None else ""
            text = (f"none: no lr tried trains ({best}{level}); {collapsed} of {len(mine)} runs collapsed"
                    + (f" (onto {_onto_text(labels, majority)})" if labels else "")
                    + (f", {nothing} with nothing predicted" if nothing else "") + (f", {diverged} diverged" if diverged else ""))
        optimizers.append((spot.optimizer, text))
    floor = r.majority_p1
    tfidf = None
    if analysis.baselines is not None:
        tfidf = analysis.baselines.tfidf.get("validation", {}).get("p1")
    refs = (f"the majority-label floor {floor:.3f}" if floor is not None else "no majority-label floor recorded") + ", " + (
        f"TF-IDF + linear SVM {tfidf:.3f}" if finite(tfidf) else f"TF-IDF {analysis.baselines_note or 'not computed'}")
    if s.best is not None:
        b = s.best
        seeds = f" (mean − std over {b.n_trials} seeds)" if b.n_trials > 1 else ""
        best = (f"{b.optimizer} lr {_lr(b.lr)}" + (f" weight decay {b.weight_decay:g}" if b.weight_decay else "")
                + f": {s.metric} {b.value:.3f}{seeds}, against {refs}")
    else:
        best = f"no configuration scored at the budget; {refs}"
    states = [(t.trial_id, final_state(t.trial_id)) for t in r.trials if t.trial_id in diag]
    collapsed = [st for _, st in states if st]
    labels = Counter(st[1] for st in collapsed if st[0] != "nothing")
    nothing = sum(1 for st in collapsed if st[0] == "nothing")
    unknown = sum(1 for st in collapsed if st[0] == "unknown")
    if collapsed:
        share = f"{len(collapsed)} of {len(states)} runs ({100 * len(collapsed) / len(states):.0f} %) collapsed at their last evaluation"
        parts = ([f"onto {_onto_text(labels, majority)}"] if labels else []) + (
            [f"{nothing} with nothing predicted (every probability below 0.5: their top label is noise)"] if nothing else [])
        kinds = f"; kind unknown for {unknown} (no {keys.VAL_TOP_MARGIN} recorded)" if unknown else ""
        collapse = f"{share}: {'; '.join(parts)}{kinds}"
    else:
        collapse = f"no run collapsed at its last evaluation ({len(states)} runs)"
    recovered = sum(1 for t in c.trials if t.recovered)
    if recovered:
        collapse += f"; {recovered} collapsed earlier and recovered"
    if c.diverged:
        collapse += f"; {len(c.diverged)} diverged"
    return Answer(optimizers=tuple(optimizers), best=best, collapse=collapse,
                  compared_at=f"epoch {at:g}" + (" (the budget)" if s.comparison.source == "budget" else ""))


def _last_epoch(trial, at: float) -> float:
    epochs = [float(row.get(keys.EPOCH, 0)) for row in trial.history if not row.get(keys.DIVERGED)
              and float(row.get(keys.EPOCH, 0)) <= at + 1e-9]
    return max(epochs, default=0.0)
