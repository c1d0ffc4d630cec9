"""The study's claims, checked on one set of results: a verdict per claim with the numbers behind it.

The study (DistilBERT on EURLex-4K, 5 optimizers at default lr × [10, 1, 0.1, 0.01, 0.001]) made four
claims. `check_claims` tests each one as strongly as the study worded it, and says why not where the
results cannot:

1. *The Adam family trains only near lr 1e-4* (near **and** narrow): per Adam-family optimizer scored
   within `NEAR_DECADES` of 1e-4, its `trains` region must reach within `NEAR_DECADES` of 1e-4 (near)
   and span at most `NARROW_DECADES` in all (narrow: the width of the window "near 1e-4" itself; an
   open edge makes the width a lower bound). Near and narrow holds; near but wide is "partly"; the
   width of each region is shown.
2. *Adagrad and Adadelta fail at every lr tried*: neither has a `trains` region. Needs a positive
   control: some other optimizer trains on these data at this budget; else "not tested here" (a
   budget at which nothing trains cannot tell a failing optimizer from a short one).
3. *Adam with weight decay fails where AdamW trains*: at each (lr, weight decay > 0) where AdamW
   trains **and** Adam trains at that lr with weight decay 0 (so a failure is the weight decay's),
   Adam with the weight decay does not. Needs both at >= 2 weight decays.
4. *Failed runs collapse onto the most frequent training labels*: two parts, each checked on every
   run that does not train (its score below the level, or a failure), at its last evaluation up to
   the budget: (a) the representation collapsed (constant predictions and `val_embed_rank` <=
   `RANK_MAX`: trainable/collapse.py), and (b) the label the head puts on top is the most frequent
   training label (its rank in training frequency is said: "2nd most frequent"). A run merely at the
   label-prior plateau (constant predictions, representation not collapsed) is named as such and
   does not hold; "not tested here" when the collapsed runs' label cannot be identified.

"Trains" is the sweet-spot rule `trains` on `val_p1` at the budget (analysis/sweetspot.py: the
configuration's config score, the mean − std of its runs' scores, reaches the majority-label floor +
margin by δ), whatever rule the report uses. Verdicts: `reproduced` (holds for every case tested),
`contradicted` (for none), `partly`, or `not tested here` with the reason. The same function serves
a results folder (`load_results`) and a ground-truth table (`results_from_table`): docs/study.md is
built with it.

Example:
    >>> claims = check_claims(results_from_table(json.load(open("bench/tables/go_emotions.json"))))  # doctest: +SKIP
    >>> [(c.number, c.verdict) for c in claims]  # doctest: +SKIP
    [(1, 'partly'), (2, 'contradicted'), (3, 'not tested here'), (4, 'partly')]

Over 400 lines on purpose: one function per claim with its controls, sharing the region and collapse
counts; apart, the claims would drift from the numbers they quote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sweetspot.analysis.collapse import NOTHING_PREDICTED, Label, collapse_kind, read_labels
from sweetspot.analysis.results import Results, finite
from sweetspot.analysis.sweetspot import DEFAULT_DELTA, FAILED, SCORED, SweetSpot, SweetSpots, find_sweet_spots
from sweetspot.analysis.words import CONFIG_SCORE, lr_text, region_text
from sweetspot.trainable import keys
from sweetspot.trainable.collapse import COLLAPSED, PLATEAU, RANK_MAX, prediction_state

REPRODUCED, CONTRADICTED, PARTLY, NOT_TESTED = "reproduced", "contradicted", "partly", "not tested here"
ADAM_FAMILY = ("adam", "amsgrad", "adamw")
ADAPTIVE = ("adagrad", "adadelta")
STUDY_LR = 1e-4  # where the study found the Adam family training
NEAR_DECADES = 0.5  # "near": a region reaching within this many decades of STUDY_LR
NARROW_DECADES = 2 * NEAR_DECADES  # "only near 1e-4": a region no wider than the window near it
_P1_TOL = 1e-4  # a label whose P@1, alone on top of every document, equals the floor is the most frequent one

CLAIMS = {  # number -> (key, the study's words)
    1: ("adam_family_near_1e-4", "The Adam family trains only near lr 1e-4 (and: at which lrs each optimizer trains)"),
    2: ("adagrad_adadelta_fail", "Adagrad and Adadelta fail at every lr tried"),
    3: ("adam_decay_fails_where_adamw_trains", "Adam with weight decay fails where AdamW trains"),
    4: ("failed_runs_collapse_onto_frequent_labels", "Failed runs collapse onto the most frequent training labels"),
}


@dataclass(frozen=True)
class Claim:
    """One claim's verdict on these results."""

    number: int
    key: str
    claim: str  # the study's claim, in words
    verdict: str  # REPRODUCED, CONTRADICTED, PARTLY or NOT_TESTED
    evidence: str  # the numbers behind the verdict; for NOT_TESTED, why
    numbers: dict[str, Any] = field(default_factory=dict)  # the same, machine-readable

    @property
    def tested(self) -> bool:
        return self.verdict != NOT_TESTED


def _verdict(held: int, tested: int) -> str:
    return REPRODUCED if held == tested else CONTRADICTED if held == 0 else PARTLY


def _claim(number: int, verdict: str, evidence: str, **numbers: Any) -> Claim:
    key, words = CLAIMS[number]
    return Claim(number=number, key=key, claim=words, verdict=verdict, evidence=evidence, numbers=numbers)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _width(spot: SweetSpot) -> tuple[float, bool]:
    """The decades its `trains` region spans (first lower edge to last upper edge), and whether that is
    a lower bound (an open edge)."""
    if not spot.intervals:
        return 0.0, False
    lo, hi = spot.intervals[0], spot.intervals[-1]
    return math.log10(hi.upper_lr / lo.lower_lr), lo.lower_open or hi.upper_open


def _spot_text(spot: SweetSpot, level: float | None) -> str:
    lrs = f"{len(spot.lrs)} lrs {lr_text(min(spot.lrs))}..{lr_text(max(spot.lrs))}" if spot.lrs else "no lr scored"
    if spot.verdict == "unknown":
        return f"{spot.optimizer} unknown (no trial reached the budget)"
    best = (
        f"best {CONFIG_SCORE} {spot.best.value:.3f} at {lr_text(spot.best.lr)}"
        if spot.best is not None and finite(spot.best.value)
        else "no score"
    )
    if spot.intervals:
        return f"{spot.optimizer} trains at {'; '.join(region_text(i) for i in spot.intervals)} ({best}; {lrs})"
    return (
        f"{spot.optimizer} trains at none of {lrs} ({best}, level {level:.3f})"
        if level is not None
        else f"{spot.optimizer}: nothing scored"
    )


def _spot_numbers(spot: SweetSpot) -> dict[str, Any]:
    width, open_ = _width(spot)
    return {
        "verdict": spot.verdict,
        "lrs": list(spot.lrs),
        "intervals": [[i.lower_lr, i.upper_lr] for i in spot.intervals],
        "width_decades": width if spot.intervals else None,
        "width_is_lower_bound": open_,
        "best_lr": spot.best.lr if spot.best else None,
        "config_score": spot.best.value if spot.best else None,
    }


def _claim_adam_family(spots: SweetSpots) -> Claim:
    window = (STUDY_LR * 10**-NEAR_DECADES, STUDY_LR * 10**NEAR_DECADES)
    every = {s.optimizer: _spot_numbers(s) for s in spots.optimizers}
    tested = [
        s
        for s in spots.optimizers
        if s.optimizer in ADAM_FAMILY
        and s.verdict != "unknown"
        and any(window[0] * (1 - 1e-9) <= lr <= window[1] * (1 + 1e-9) for lr in s.lrs)
    ]
    others = "; ".join(_spot_text(s, spots.threshold) for s in spots.optimizers if s.optimizer not in ADAM_FAMILY)
    if not tested:
        return _claim(
            1,
            NOT_TESTED,
            f"no Adam-family optimizer (adam, amsgrad, adamw) was scored at the budget at an lr "
            f"within {NEAR_DECADES:g} decade of 1e-4" + (f". Elsewhere: {others}" if others else ""),
            optimizers=every,
        )
    near, narrow, words, unknown = {}, {}, [], []
    for s in tested:
        is_near = any(i.lower_lr <= window[1] * (1 + 1e-9) and i.upper_lr >= window[0] * (1 - 1e-9) for i in s.intervals)
        width, open_ = _width(s)
        if is_near and open_ and width <= NARROW_DECADES + 1e-9:  # open: it may extend past the lrs sampled
            unknown.append(f"{_spot_text(s, spots.threshold)}: near, width unknown (open beyond the lrs sampled)")
            continue
        near[s.optimizer], narrow[s.optimizer] = is_near, is_near and width <= NARROW_DECADES + 1e-9
        every[s.optimizer].update({"near_1e-4": near[s.optimizer], "narrow": narrow[s.optimizer]})
        shape = (
            f"{width:.1f} decade{'s' if width != 1 else ''}{' or more' if open_ else ''} wide: "
            + ("near and narrow" if narrow[s.optimizer] else "near but wide" if is_near else "not near 1e-4")
            if s.intervals
            else "trains nowhere"
        )
        words.append(f"{_spot_text(s, spots.threshold)}: {shape}")
    if not near:
        return _claim(1, NOT_TESTED, "; ".join(unknown), optimizers=every)
    words += unknown
    tested = [s for s in tested if s.optimizer in near]
    held, near_n = sum(narrow.values()), sum(near.values())
    verdict = REPRODUCED if held == len(tested) else CONTRADICTED if near_n == 0 else PARTLY
    return _claim(
        1,
        verdict,
        f"{held} of {len(tested)} Adam-family optimizers train only near 1e-4 (a region reaching within "
        f"{NEAR_DECADES:g} decade of it and at most {NARROW_DECADES:g} decade wide), {near_n} near it: "
        + "; ".join(words)
        + (f". Others: {others}" if others else ""),
        window=list(window),
        narrow_decades=NARROW_DECADES,
        optimizers=every,
    )


def _claim_adaptive(spots: SweetSpots) -> Claim:
    tested = [s for s in spots.optimizers if s.optimizer in ADAPTIVE and s.verdict != "unknown"]
    if not tested:
        return _claim(2, NOT_TESTED, "neither Adagrad nor Adadelta was scored at the budget")
    controls = [s for s in spots.optimizers if s.optimizer not in ADAPTIVE and s.found]
    text = "; ".join(_spot_text(s, spots.threshold) for s in tested)
    if not controls:
        return _claim(
            2,
            NOT_TESTED,
            f"no positive control: no other optimizer trains on these data at this budget "
            f"({spots.comparison.epoch:g} epochs), so failing cannot be told from a budget too short "
            f"for any: {text}",
            optimizers={s.optimizer: _spot_numbers(s) for s in tested},
        )
    failed = [s for s in tested if not s.found]
    missing = [n for n in ADAPTIVE if n not in {s.optimizer for s in tested}]
    return _claim(
        2,
        _verdict(len(failed), len(tested)),
        f"{len(failed)} of {len(tested)} fail everywhere: {text}"
        + (f" ({', '.join(missing)} not scored here)" if missing else "")
        + f"; positive control: {', '.join(s.optimizer for s in controls)} train{'s' if len(controls) == 1 else ''} here",
        optimizers={s.optimizer: _spot_numbers(s) for s in tested},
        controls=[s.optimizer for s in controls],
    )


def _claim_weight_decay(spots: SweetSpots) -> Claim:
    decays = {o: sorted({c.weight_decay for c in spots.configs if c.optimizer == o}) for o in ("adam", "adamw")}
    if any(len(d) < 2 or max(d) <= 0 for d in decays.values()):
        have = ", ".join(f"{o} at {len(d)} ({', '.join(f'{x:g}' for x in d) or 'none'})" for o, d in decays.items())
        return _claim(3, NOT_TESTED, f"needs Adam and AdamW each at >= 2 weight decays; here {have}")
    by = {(c.optimizer, round(math.log10(c.lr), 6), c.weight_decay): c for c in spots.configs}
    points = sorted({(lr, wd) for (o, lr, wd) in by if o == "adamw" and wd > 0 and ("adam", lr, wd) in by})
    if not points:
        return _claim(3, NOT_TESTED, "Adam and AdamW share no (lr, weight decay > 0) configuration")
    rows, counted, adam_fails = [], 0, 0
    for lr, wd in points:
        adam, adamw, control = by[("adam", lr, wd)], by[("adamw", lr, wd)], by.get(("adam", lr, 0.0))
        a_ok, w_ok = spots.qualifies(adam.value), spots.qualifies(adamw.value)
        c_ok = control is not None and spots.qualifies(control.value)
        rows.append(
            {
                "lr": adamw.lr,
                "weight_decay": wd,
                "adam": adam.value,
                "adam_trains": a_ok,
                "adamw": adamw.value,
                "adamw_trains": w_ok,
                "adam_wd0": control.value if control else None,
                "adam_wd0_trains": c_ok,
                "counted": w_ok and c_ok,
            }
        )
        if w_ok and c_ok:
            counted += 1
            adam_fails += not a_ok

    def state(ok: bool) -> str:
        return "trains" if ok else "fails"

    text = "; ".join(
        f"lr {lr_text(r['lr'])} wd {r['weight_decay']:g}: AdamW {r['adamw']:.3f} ({state(r['adamw_trains'])}), "
        f"Adam {r['adam']:.3f} ({state(r['adam_trains'])}), Adam at wd 0 "
        + (f"{r['adam_wd0']:.3f} ({state(r['adam_wd0_trains'])})" if r["adam_wd0"] is not None else "not run")
        for r in rows
    )
    if not counted:
        return _claim(
            3,
            NOT_TESTED,
            f"no (lr, weight decay > 0) point where AdamW trains and Adam trains at weight decay 0 "
            f"(the control that makes a failure the weight decay's), of the {len(points)} both ran "
            f"({CONFIG_SCORE}s): {text}",
            points=rows,
        )
    return _claim(
        3,
        _verdict(adam_fails, counted),
        f"Adam with weight decay fails at {adam_fails} of the {counted} points where "
        f"AdamW trains and Adam trains at weight decay 0 (level {spots.threshold:.3f}; {CONFIG_SCORE}s): {text}",
        points=rows,
    )


def _majority_ids(majority: Label | None, rows: list[dict[str, Any]]) -> tuple[set[int], str]:
    """The most frequent training label's id(s), and how they are known: from the prepared data, or
    from the rows: a label alone on top of every document (prediction entropy 0) has P@1 = its
    validation frequency, which for the most frequent training label is the floor (`majority_p1`)."""
    if majority is not None:
        return {majority.id}, "labels.json"
    ids = set()
    for r in rows:
        p1, floor, top = r.get(keys.VAL_P1), r.get(keys.MAJORITY_P1), r.get(keys.VAL_TOP_LABEL)
        if finite(top) and r.get(keys.VAL_PRED_ENTROPY) == 0 and finite(p1) and finite(floor) and abs(p1 - floor) <= _P1_TOL:
            ids.add(int(top))
    return ids, "P@1 equal to the floor with one label on top of every document (no labels.json)"


ONTO_MOST = "collapsed onto the most frequent label"
ONTO_OTHER = "collapsed onto another label"
PARTS = (ONTO_MOST, ONTO_OTHER, NOTHING_PREDICTED, PLATEAU, "not collapsed", "diverged")


def _claim_collapse(results: Results, spots: SweetSpots, labels: dict[int, Label], majority: Label | None) -> Claim:
    train, at = results.train_config, spots.comparison.epoch
    failed: list[tuple[str, dict[str, Any] | None, str]] = []  # (trial, row at the budget, outcome)
    for t in results.trials:
        score = spots.comparison.scores[t.trial_id]
        if score.outcome == SCORED and not spots.qualifies(score.value) or score.outcome == FAILED:
            rows = [r for r in t.history if float(r.get(keys.EPOCH, 0)) <= at + 1e-9]
            failed.append((t.trial_id, rows[-1] if rows else None, "diverged" if score.diverged else score.outcome))
    if not failed:
        reached = sum(s.outcome in (SCORED, FAILED) for s in spots.comparison.scores.values())
        return _claim(
            4,
            NOT_TESTED,
            "no run failed: every run scored at the budget trains" if reached else f"no run reached the budget ({at:g} epochs)",
        )
    if not any(finite(r.get(keys.VAL_PRED_ENTROPY)) for _, r, _ in failed if r):
        return _claim(4, NOT_TESTED, "the runs recorded no prediction entropy: constant predictions cannot be told")
    ids, how = _majority_ids(majority, [r for _, r, _ in failed if r])
    by_frequency = (
        sorted(labels.values(), key=lambda x: (-(x.train_count or 0), x.id))
        if labels and all(x.train_count is not None for x in labels.values())
        else []
    )
    rank_of = {x.id: n + 1 for n, x in enumerate(by_frequency)}
    counts = {what: 0 for what in PARTS}
    others: dict[int | None, int] = {}
    unmeasured = 0
    for _, row, outcome in failed:
        if outcome == "diverged" or row is None or row.get(keys.DIVERGED):
            counts["diverged"] += 1
            continue
        state = prediction_state(row, entropy_fraction=train.collapse_entropy_fraction, p1_margin=train.collapse_p1_margin)
        if state is None:
            counts["not collapsed"] += 1
        elif state == PLATEAU:
            counts[PLATEAU] += 1
        elif collapse_kind(row) == NOTHING_PREDICTED:
            counts[NOTHING_PREDICTED] += 1
        else:
            unmeasured += not finite(row.get(keys.VAL_EMBED_RANK))
            top = int(row[keys.VAL_TOP_LABEL]) if finite(row.get(keys.VAL_TOP_LABEL)) else None
            if state == COLLAPSED and top is not None and top in ids:
                counts[ONTO_MOST] += 1
            elif state == COLLAPSED:
                counts[ONTO_OTHER] += 1
                others[top] = others.get(top, 0) + 1
            else:  # CONSTANT: no embed rank and P@1 above the floor: the representation is not known
                counts["not collapsed"] += 1
    constant = counts[ONTO_MOST] + counts[ONTO_OTHER]
    if constant and not ids and not rank_of:
        return _claim(
            4,
            NOT_TESTED,
            f"{constant} failed runs collapsed onto one label, but the most frequent training label "
            "cannot be identified (no labels.json, and no collapsed run sits exactly at the floor)",
            failed=len(failed),
            counts=counts,
        )

    def name(i: int | None) -> str:
        if i is None:
            return "no label recorded"
        label = labels.get(i)
        rank = (
            (
                "the most frequent training label"
                if rank_of[i] == 1
                else f"the {_ordinal(rank_of[i])} most frequent training label"
            )
            if i in rank_of
            else "the most frequent training label"
            if i in ids
            else "its rank in training frequency not recorded"
        )
        return f"{label.name} (id {i}, {rank})" if label and label.name else f"label id {i} ({rank})"

    most = ", ".join(name(i) for i in sorted(ids)) or "not identified"
    parts = [
        f"{n} {what}"
        + (f" ({most})" if what == ONTO_MOST else "")
        + (
            f" ({', '.join(f'{name(i)} ×{k}' for i, k in sorted(others.items(), key=lambda x: -x[1]))})"
            if what == ONTO_OTHER
            else ""
        )
        for what, n in counts.items()
        if n
    ]
    held = counts[ONTO_MOST]
    evidence = (
        f"{held} of {len(failed)} failed runs, at their last evaluation up to epoch {at:g}, have both a collapsed "
        f"representation (constant predictions, {keys.VAL_EMBED_RANK} <= {RANK_MAX:g}) and the most frequent "
        f"training label on top: " + "; ".join(parts) + f". The most frequent label known from {how}"
    )
    if unmeasured:
        evidence += f". {unmeasured} recorded no {keys.VAL_EMBED_RANK}: collapsed there means constant predictions at the floor"
    return _claim(
        4,
        _verdict(held, len(failed)),
        evidence,
        failed=len(failed),
        counts=counts,
        most_frequent=sorted(ids),
        other_labels={str(k): v for k, v in others.items()},
        other_label_ranks={str(k): rank_of.get(k) for k in others},
    )


def check_claims(
    results: Results,
    *,
    delta: float = DEFAULT_DELTA,
    epoch: float | None = None,
    labels: dict[int, Label] | None = None,
    majority_label: Label | None = None,
    spots: SweetSpots | None = None,
) -> tuple[Claim, ...]:
    """The study's four claims (the module docstring) checked on `results`, in order.

    Args:
        results: A results folder (`load_results`) or a table (`results_from_table`).
        delta, epoch: As in `find_sweet_spots` (the `trains` rule on `val_p1` is always used).
        labels, majority_label: From `read_labels`; read from `results.prepared_path` when omitted.
        spots: `find_sweet_spots(results, metric="val_p1", rule="trains", ...)` if already computed.
    """
    if spots is None or spots.rule != "trains" or spots.metric != keys.VAL_P1:
        spots = find_sweet_spots(results, metric=keys.VAL_P1, mode="max", delta=delta, epoch=epoch, rule="trains")
    if labels is None:
        labels, majority_label = read_labels(results.prepared_path)
    return (
        _claim_adam_family(spots),
        _claim_adaptive(spots),
        _claim_weight_decay(spots),
        _claim_collapse(results, spots, labels, majority_label),
    )
