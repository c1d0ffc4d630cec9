"""Collapse diagnosis: which trials collapsed, from which epoch, whether they recovered, and onto
which label.

An evaluation is collapsed by the trainable's rule (trainable/collapse.py), applied again here to
the recorded signals with the experiment's thresholds: its predictions are (nearly) constant across
documents (prediction entropy at most `train.collapse_entropy_fraction` × the true-label entropy)
**and** its representation collapsed (`val_embed_rank` <= `RANK_MAX`), whatever label it predicts
and whatever that label's share. Constant predictions with a representation that still tells
documents apart are *at the label-prior plateau*, counted apart. Rows recorded without
`val_embed_rank` fall back to P@1 at the floor + `train.collapse_p1_margin` (trainable/collapse.py);
rows without the entropy signals fall back to the recorded `collapsed` flag; rows with neither count
as not collapsed. With `until` (the comparison epoch) only evaluations up to it are read.

Per trial: `collapsed` (at least one collapsed evaluation), `first_epoch`, `recovered` (collapsed
earlier but not at its last evaluation), `state` (its last evaluation's: collapsed, at the
label-prior plateau, or None), and `labels`: the constant top prediction
(`val_top_label`) at its collapsed evaluations, most frequent first (ties: the latest first), named through the prepared
data's `labels.json` — the study expects the most frequent training label. Diverged trials (NaN or
inf loss) are listed apart: their later metrics are placeholders, not a collapse.

Two kinds of collapse (`collapse_kind`, per collapsed evaluation; a trial's `kind` is that of its latest):
- ONTO_LABEL, *onto a label*: one label's score tops every document and it is a real prediction:
  some probability reaches the threshold (`val_pred_positive` > 0) or the top label stands clear of
  the runner-up (`val_top_margin` >= `NOISE_MARGIN`). GoEmotions' collapses onto `neutral` at its
  prior (~0.33) are this kind though nothing reaches 0.5.
- NOTHING_PREDICTED, *nothing predicted*: every probability below the threshold and the top two
  within `NOISE_MARGIN` of each other: the "top label" is noise among near-equal scores (seen on a
  ~2,000-label space: an arbitrary rare label, P@1 = 0). Its top labels are not counted in `labels`.
- UNKNOWN_KIND: a folder or table from before those two signals, where the micro F1 does not show
  that something was predicted either.

Example:
    >>> report = diagnose_collapse(load_results("results/quickstart"), labels=read_labels(prepared))  # doctest: +SKIP
    >>> [(d.trial_id, d.first_epoch, d.labels[0].name) for d in report.collapsed]  # doctest: +SKIP
    [('b74c9_00005', 1.0, 'neutral')]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sweetspot import storage
from sweetspot.analysis.results import Results, TrialResult, finite
from sweetspot.trainable import keys
from sweetspot.trainable.collapse import COLLAPSED, PLATEAU, is_collapsed_row, prediction_state

ONTO_LABEL = "onto a label"
NOTHING_PREDICTED = "nothing predicted"
UNKNOWN_KIND = "unknown kind"
NOISE_MARGIN = 0.01  # top-1 minus top-2 probability below which, with nothing predicted, the top label is noise


def collapse_kind(row: dict[str, Any]) -> str:
    """The kind of a collapsed evaluation (see the module docstring) from its reported signals.

    Example:
        >>> collapse_kind({"val_pred_positive": 0.0, "val_top_margin": 0.0002})
        'nothing predicted'
        >>> collapse_kind({"val_pred_positive": 0.0, "val_top_margin": 0.21})  # neutral at its prior, below 0.5
        'onto a label'
        >>> collapse_kind({"val_micro_f1": 0.0})  # an older row: nothing shows which
        'unknown kind'
    """
    positive, margin = row.get(keys.VAL_PRED_POSITIVE), row.get(keys.VAL_TOP_MARGIN)
    if finite(positive) and finite(margin):
        return NOTHING_PREDICTED if positive <= 0 and margin < NOISE_MARGIN else ONTO_LABEL
    f1 = row.get(keys.VAL_MICRO_F1)
    return ONTO_LABEL if finite(f1) and f1 > 0 else UNKNOWN_KIND  # a true positive: a probability reached 0.5


@dataclass(frozen=True)
class Label:
    id: int
    name: str | None  # None when labels.json is not available
    train_count: int | None = None


@dataclass(frozen=True)
class TrialCollapse:
    """One trial's collapse diagnosis."""

    trial_id: str
    collapsed: bool
    first_epoch: float | None
    recovered: bool
    final_collapsed: bool  # its last evaluation (the one its checkpoint holds) is collapsed
    collapsed_epochs: tuple[float, ...]
    labels: tuple[
        Label, ...
    ]  # the top predictions at the collapsed evaluations (not the nothing-predicted ones), most frequent first
    onto_majority: bool | None  # the first of `labels` is the most frequent training label (None: unknown)
    entropy: tuple[tuple[float, float], ...]  # (epoch, val_pred_entropy) for the collapse panel
    threshold: float | None  # entropy_fraction × the true-label entropy (the entropy part of the rule)
    kind: str | None = None  # collapse_kind of its latest collapsed evaluation (None: never collapsed)
    noise_label: Label | None = None  # NOTHING_PREDICTED: the top label that is noise, at that evaluation
    state: str | None = None  # its last evaluation's prediction_state: COLLAPSED, PLATEAU, CONSTANT or None
    last_top: Label | None = None  # its last evaluation's top label, when its predictions are constant there


@dataclass(frozen=True)
class DivergedTrial:
    trial_id: str
    epoch: float | None  # the first report with diverged = 1
    config: dict[str, Any]


@dataclass(frozen=True)
class CollapseCount:
    """Runs collapsed at their last evaluation (up to the comparison epoch), at the label-prior
    plateau there, and collapsed earlier but not there (recovered), of `runs` (diverged ones apart)."""

    runs: int
    final: int
    plateau: int
    recovered: int
    diverged: int

    def text(self, onto: str = "") -> str:
        """ "3 of 12 runs collapsed at their last evaluation; 2 at the label-prior plateau; 1 collapsed earlier and recovered";
        `onto` (which labels) follows the first clause in brackets."""
        out = f"{self.final} of {self.runs} runs collapsed at their last evaluation" + (f" ({onto})" if onto else "")
        out += f"; {self.plateau} {PLATEAU} (constant predictions, representation not collapsed)" if self.plateau else ""
        out += f"; {self.recovered} collapsed earlier and recovered" if self.recovered else ""
        return out + (f"; {self.diverged} diverged" if self.diverged else "")


@dataclass(frozen=True)
class CollapseReport:
    trials: tuple[TrialCollapse, ...]  # every trial with reports, diverged ones excluded
    diverged: tuple[DivergedTrial, ...]
    majority_label: Label | None

    @property
    def collapsed(self) -> tuple[TrialCollapse, ...]:
        return tuple(t for t in self.trials if t.collapsed)

    def count(self) -> CollapseCount:
        """The one collapse count the answer, figure (e) and the tables show."""
        return CollapseCount(
            runs=len(self.trials),
            final=sum(t.final_collapsed for t in self.trials),
            plateau=sum(t.state == PLATEAU for t in self.trials),
            recovered=sum(t.recovered for t in self.trials),
            diverged=len(self.diverged),
        )

    def of(self, trial_id: str) -> TrialCollapse | None:
        return next((t for t in self.trials if t.trial_id == trial_id), None)


def read_labels(prepared_path: str | None) -> tuple[dict[int, Label], Label | None]:
    """The prepared data's labels by id and its majority label ({} and None when unavailable)."""
    if not prepared_path:
        return {}, None
    text = storage.read_text(storage.join(prepared_path, "labels.json"))
    labels = {int(x["id"]): Label(int(x["id"]), str(x["name"]), x.get("train_count")) for x in json.loads(text)} if text else {}
    manifest_text = storage.read_text(storage.join(prepared_path, "manifest.json"))
    majority = None
    if manifest_text:
        m = json.loads(manifest_text).get("majority_label")
        if m is not None:
            majority = labels.get(int(m["id"]), Label(int(m["id"]), m.get("name")))
    elif labels:  # the most frequent training label, lowest id on ties (as prepare picks it)
        majority = max(labels.values(), key=lambda x: (x.train_count or 0, -x.id))
    return labels, majority


def _trial(
    t: TrialResult,
    *,
    labels: dict[int, Label],
    majority: Label | None,
    entropy_fraction: float,
    p1_margin: float,
    until: float | None = None,
) -> TrialCollapse:
    rows = [
        r
        for r in t.history
        if not r.get(keys.DIVERGED) and (until is None or not finite(r.get(keys.EPOCH)) or r[keys.EPOCH] <= until + 1e-9)
    ]
    flags = [
        (float(r.get(keys.EPOCH, 0)), r, is_collapsed_row(r, entropy_fraction=entropy_fraction, p1_margin=p1_margin))
        for r in rows
    ]
    hit = [(e, r) for e, r, f in flags if f]
    top_ids = [
        int(r[keys.VAL_TOP_LABEL]) for _, r in hit if finite(r.get(keys.VAL_TOP_LABEL)) and collapse_kind(r) != NOTHING_PREDICTED
    ]
    tops, latest = Counter(top_ids), {i: n for n, i in enumerate(top_ids)}  # ties: the most recent first
    found = tuple(labels.get(i, Label(i, None)) for i in sorted(tops, key=lambda i: (-tops[i], -latest[i])))
    final = bool(flags and flags[-1][2])
    kind = collapse_kind(hit[-1][1]) if hit else None
    noise = hit[-1][1].get(keys.VAL_TOP_LABEL) if kind == NOTHING_PREDICTED else None
    true_entropy = next((r[keys.VAL_TRUE_ENTROPY] for r in rows if finite(r.get(keys.VAL_TRUE_ENTROPY))), None)
    state = prediction_state(rows[-1], entropy_fraction=entropy_fraction, p1_margin=p1_margin) if rows else None
    if final and state is None:
        state = COLLAPSED  # from the recorded flag: no entropy signals
    top = rows[-1].get(keys.VAL_TOP_LABEL) if state else None
    return TrialCollapse(
        trial_id=t.trial_id,
        collapsed=bool(hit),
        first_epoch=hit[0][0] if hit else None,
        recovered=bool(hit) and not final,
        final_collapsed=final,
        collapsed_epochs=tuple(e for e, _ in hit),
        labels=found,
        onto_majority=(found[0].id == majority.id) if found and majority is not None else None,
        entropy=tuple((e, float(r[keys.VAL_PRED_ENTROPY])) for e, r, _ in flags if finite(r.get(keys.VAL_PRED_ENTROPY))),
        threshold=entropy_fraction * true_entropy if true_entropy is not None else None,
        kind=kind,
        noise_label=labels.get(int(noise), Label(int(noise), None)) if finite(noise) else None,
        state=state,
        last_top=labels.get(int(top), Label(int(top), None)) if finite(top) and top >= 0 else None,
    )


def diagnose_collapse(
    results: Results, *, labels: dict[int, Label] | None = None, majority_label: Label | None = None, until: float | None = None
) -> CollapseReport:
    """Diagnoses every trial of `results` (see the module docstring).

    Args:
        results: A loaded results folder; its `train:` section gives the rule's thresholds.
        labels, majority_label: From `read_labels(results.prepared_path)`; read here when omitted.
        until: Read evaluations up to this epoch only (the comparison epoch); None: all.
    """
    if labels is None:
        labels, majority_label = read_labels(results.prepared_path)
    train = results.train_config
    trials, diverged = [], []
    for t in results.trials:
        if t.diverged:
            first = next((float(r.get(keys.EPOCH, 0)) for r in t.history if r.get(keys.DIVERGED)), None)
            diverged.append(DivergedTrial(trial_id=t.trial_id, epoch=first, config=results.params(t)))
        elif t.history:
            trials.append(
                _trial(
                    t,
                    labels=labels,
                    majority=majority_label,
                    entropy_fraction=train.collapse_entropy_fraction,
                    p1_margin=train.collapse_p1_margin,
                    until=until,
                )
            )
    return CollapseReport(trials=tuple(trials), diverged=tuple(diverged), majority_label=majority_label)
