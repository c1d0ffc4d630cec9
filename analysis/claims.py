"""The study's claims, checked on one set of results: a verdict per claim with the numbers behind it.

The study (DistilBERT on EURLex-4K, 5 optimizers at default lr × [10, 1, 0.1, 0.01, 0.001]) made four
claims. `check_claims` tests each one that the results can test, and says why not for the others:

1. *The Adam family trains near lr 1e-4* (and, generally, at which lrs each optimizer trains): each
   of Adam, AMSGrad and AdamW has a sweet spot reaching within `NEAR_DECADES` of 1e-4. Needs one of
   them sampled there.
2. *Adagrad and Adadelta fail at every lr tried*: neither has a sweet spot. Needs one of them scored
   at the budget.
3. *Adam with weight decay fails where AdamW trains*: at each (lr, weight decay > 0) sampled for both,
   where AdamW trains, Adam does not. Needs both at >= 2 weight decays.
4. *Failed runs collapse onto the most frequent training labels*: each run that does not train
   (its own score at the budget below the level, or stopped as a failure) is, at the budget,
   collapsed onto the most frequent training label — not onto another label, not a collapse where
   nothing is predicted (its "top label" is noise: analysis/collapse.py), not merely stuck near its
   initialisation, not diverged.

"Trains" is the sweet-spot rule `trains` on `val_p1` at the budget (analysis/sweetspot.py: the
configuration's seeds, mean − std, beat the majority-label floor + margin by δ), whatever rule the
report uses. Verdicts: `reproduced` (holds for every case tested), `contradicted` (for none),
`partly`, or `not tested here` with the reason. The same function serves a results folder
(`load_results`) and a ground-truth table (`results_from_table`): docs/study.md is built with it.

Example:
    >>> claims = check_claims(results_from_table(json.load(open("bench/tables/go_emotions.json"))))  # doctest: +SKIP
    >>> [(c.number, c.verdict) for c in claims]  # doctest: +SKIP
    [(1, 'reproduced'), (2, 'contradicted'), (3, 'not tested here'), (4, 'partly')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sweetspot.analysis.collapse import NOTHING_PREDICTED, UNKNOWN_KIND, Label, collapse_kind, read_labels
from sweetspot.analysis.results import Results, finite
from sweetspot.analysis.sweetspot import DEFAULT_DELTA, FAILED, SCORED, SweetSpot, SweetSpots, find_sweet_spots
from sweetspot.trainable import keys
from sweetspot.trainable.collapse import is_collapsed_row

REPRODUCED, CONTRADICTED, PARTLY, NOT_TESTED = "reproduced", "contradicted", "partly", "not tested here"
ADAM_FAMILY = ("adam", "amsgrad", "adamw")
ADAPTIVE = ("adagrad", "adadelta")
STUDY_LR = 1e-4  # where the study found the Adam family training
NEAR_DECADES = 0.5  # "near": a sweet spot reaching within this many decades of STUDY_LR
_P1_TOL = 1e-4  # a label whose P@1, alone on top of every document, equals the floor is the most frequent one

CLAIMS = {  # number -> (key, the study's words)
    1: ("adam_family_near_1e-4", "The Adam family trains near lr 1e-4 (and: at which lrs each optimizer trains)"),
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


def _lr(x: float) -> str:
    return f"{x:.1e}"


def _spot_text(spot: SweetSpot, level: float | None) -> str:
    lrs = f"{len(spot.lrs)} lrs {_lr(min(spot.lrs))}..{_lr(max(spot.lrs))}" if spot.lrs else "no lr scored"
    if spot.verdict == "unknown":
        return f"{spot.optimizer} unknown (no trial reached the budget)"
    best = f"best mean {spot.best.mean:.3f} at {_lr(spot.best.lr)}" if spot.best is not None and finite(spot.best.mean) else "no score"
    if spot.intervals:
        where = ", ".join(f"{_lr(i.lower_lr)}..{_lr(i.upper_lr)}" for i in spot.intervals)
        return f"{spot.optimizer} trains at {where} ({best}; {lrs})"
    return f"{spot.optimizer} trains at none of {lrs} ({best}, level {level:.3f})" if level is not None else \
        f"{spot.optimizer}: nothing scored"


def _spot_numbers(spot: SweetSpot) -> dict[str, Any]:
    return {"verdict": spot.verdict, "lrs": list(spot.lrs), "intervals": [[i.lower_lr, i.upper_lr] for i in spot.intervals],
            "best_lr": spot.best.lr if spot.best else None, "best_mean": spot.best.mean if spot.best else None}


def _claim_adam_family(spots: SweetSpots) -> Claim:
    window = (STUDY_LR * 10 ** -NEAR_DECADES, STUDY_LR * 10 ** NEAR_DECADES)
    every = {s.optimizer: _spot_numbers(s) for s in spots.optimizers}
    tested = [s for s in spots.optimizers if s.optimizer in ADAM_FAMILY and s.verdict != "unknown"
              and any(window[0] * (1 - 1e-9) <= lr <= window[1] * (1 + 1e-9) for lr in s.lrs)]
    others = "; ".join(_spot_text(s, spots.threshold) for s in spots.optimizers if s.optimizer not in ADAM_FAMILY)
    if not tested:
        return _claim(1, NOT_TESTED, f"no Adam-family optimizer (adam, amsgrad, adamw) was scored at the budget at an lr "
                                     f"within {NEAR_DECADES:g} decade of 1e-4" + (f". Elsewhere: {others}" if others else ""),
                      optimizers=every)
    near = {s.optimizer: any(i.lower_lr <= window[1] * (1 + 1e-9) and i.upper_lr >= window[0] * (1 - 1e-9) for i in s.intervals)
            for s in tested}
    for name, v in near.items():
        every[name]["near_1e-4"] = v
    text = "; ".join(_spot_text(s, spots.threshold) for s in tested)
    return _claim(1, _verdict(sum(near.values()), len(near)),
                  f"{sum(near.values())} of {len(near)} Adam-family optimizers train within {NEAR_DECADES:g} decade of 1e-4: "
                  f"{text}" + (f". Others: {others}" if others else ""), window=list(window), optimizers=every)


def _claim_adaptive(spots: SweetSpots) -> Claim:
    tested = [s for s in spots.optimizers if s.optimizer in ADAPTIVE and s.verdict != "unknown"]
    if not tested:
        return _claim(2, NOT_TESTED, "neither Adagrad nor Adadelta was scored at the budget")
    failed = [s for s in tested if not s.found]
    missing = [n for n in ADAPTIVE if n not in {s.optimizer for s in tested}]
    text = "; ".join(_spot_text(s, spots.threshold) for s in tested)
    return _claim(2, _verdict(len(failed), len(tested)), f"{len(failed)} of {len(tested)} fail everywhere: {text}"
                  + (f" ({', '.join(missing)} not scored here)" if missing else ""),
                  optimizers={s.optimizer: _spot_numbers(s) for s in tested})


def _claim_weight_decay(spots: SweetSpots) -> Claim:
    decays = {o: sorted({c.weight_decay for c in spots.configs if c.optimizer == o}) for o in ("adam", "adamw")}
    if any(len(d) < 2 or max(d) <= 0 for d in decays.values()):
        have = ", ".join(f"{o} at {len(d)} ({', '.join(f'{x:g}' for x in d) or 'none'})" for o, d in decays.items())
        return _claim(3, NOT_TESTED, f"needs Adam and AdamW each at >= 2 weight decays; here {have}")
    by = {(c.optimizer, round(math.log10(c.lr), 6), c.weight_decay): c for c in spots.configs}
    points = sorted({(lr, wd) for (o, lr, wd) in by if o == "adamw" and wd > 0 and ("adam", lr, wd) in by})
    rows, where_adamw_trains, adam_fails = [], 0, 0
    for lr, wd in points:
        adam, adamw = by[("adam", lr, wd)], by[("adamw", lr, wd)]
        a_ok, w_ok = spots.qualifies(adam.value), spots.qualifies(adamw.value)
        rows.append({"lr": adamw.lr, "weight_decay": wd, "adam": adam.mean, "adam_trains": a_ok, "adamw": adamw.mean,
                     "adamw_trains": w_ok})
        if w_ok:
            where_adamw_trains += 1
            adam_fails += not a_ok
    text = "; ".join(f"lr {_lr(r['lr'])} wd {r['weight_decay']:g}: AdamW {r['adamw']:.3f} "
                     f"({'trains' if r['adamw_trains'] else 'fails'}), Adam {r['adam']:.3f} "
                     f"({'trains' if r['adam_trains'] else 'fails'})" for r in rows)
    if not points:
        return _claim(3, NOT_TESTED, "Adam and AdamW share no (lr, weight decay > 0) configuration")
    if not where_adamw_trains:
        return _claim(3, NOT_TESTED, f"AdamW trains at none of the {len(points)} (lr, weight decay > 0) points both ran: {text}",
                      points=rows)
    return _claim(3, _verdict(adam_fails, where_adamw_trains), f"Adam fails at {adam_fails} of the {where_adamw_trains} points "
                  f"where AdamW trains (level {spots.threshold:.3f}): {text}", points=rows)


def _majority_ids(results: Results, majority: Label | None, rows: list[dict[str, Any]]) -> tuple[set[int], str]:
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
        return _claim(4, NOT_TESTED, "no run failed: every run scored at the budget trains" if reached else
                      f"no run reached the budget ({at:g} epochs)")
    ids, how = _majority_ids(results, majority, [r for _, r, _ in failed if r])
    counts = {"onto the most frequent label": 0, "onto another label": 0, NOTHING_PREDICTED: 0, "not collapsed": 0,
              "diverged": 0}
    unknown_kind, others = 0, {}
    for trial_id, row, outcome in failed:
        collapsed = row is not None and not row.get(keys.DIVERGED) and is_collapsed_row(
            row, entropy_fraction=train.collapse_entropy_fraction, p1_margin=train.collapse_p1_margin)
        if outcome == "diverged" or row is None or row.get(keys.DIVERGED):
            counts["diverged"] += 1
        elif not collapsed:
            counts["not collapsed"] += 1
        elif (kind := collapse_kind(row)) == NOTHING_PREDICTED:
            counts[NOTHING_PREDICTED] += 1
        else:
            unknown_kind += kind == UNKNOWN_KIND
            top = int(row[keys.VAL_TOP_LABEL]) if finite(row.get(keys.VAL_TOP_LABEL)) else None
            if top is not None and top in ids:
                counts["onto the most frequent label"] += 1
            else:
                counts["onto another label"] += 1
                others[top] = others.get(top, 0) + 1
    if not any(finite(r.get(keys.VAL_PRED_ENTROPY)) or finite(r.get(keys.COLLAPSED)) for _, r, _ in failed if r):
        return _claim(4, NOT_TESTED, "the runs recorded no collapse signals")

    def name(i: int | None) -> str:
        if i is None:
            return "no label recorded"
        label = labels.get(i)
        return f"{label.name} (id {i})" if label and label.name else f"label id {i}"

    most = ", ".join(name(i) for i in sorted(ids)) or "not identified"
    parts = [f"{n} {what}" + (f" ({most})" if what == "onto the most frequent label" else "") +
             (f" ({', '.join(f'{name(i)} ×{k}' for i, k in sorted(others.items(), key=lambda x: -x[1]))})"
              if what == "onto another label" else "") for what, n in counts.items() if n]
    held = counts["onto the most frequent label"]
    evidence = (f"{held} of {len(failed)} failed runs collapsed onto the most frequent training label, at epoch {at:g}: "
                + "; ".join(parts) + f". The most frequent label known from {how}")
    if unknown_kind:
        evidence += (f". Kind unknown for {unknown_kind} (recorded before val_pred_positive/val_top_margin, with micro F1 0: "
                     "onto the label or nothing predicted cannot be told apart)")
    return _claim(4, _verdict(held, len(failed)), evidence, failed=len(failed), counts=counts, unknown_kind=unknown_kind,
                  most_frequent=sorted(ids), other_labels={str(k): v for k, v in others.items()})


def check_claims(results: Results, *, delta: float = DEFAULT_DELTA, epoch: float | None = None,
                 labels: dict[int, Label] | None = None, majority_label: Label | None = None,
                 spots: SweetSpots | None = None) -> tuple[Claim, ...]:
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
    return (_claim_adam_family(spots), _claim_adaptive(spots), _claim_weight_decay(spots),
            _claim_collapse(results, spots, labels, majority_label))
