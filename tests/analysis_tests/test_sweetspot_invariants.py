"""The sweet-spot rule's invariants at the budget, over many random results folders (a property test
with seeded draws: a failure names the seed that broke it).

Each folder mixes trials that ran the whole budget, ASHA-stopped ones, diverged ones, collapse-
stopped ones and errored ones, at random lrs, weight decays and seeds, written through the same
layout code as a real search. What must hold:
- every configuration that reached the budget and clears the threshold lies inside one of its
  optimizer's intervals, and no optimizer with such a configuration is reported without a sweet spot
  (with one seed per configuration, that is every such trial);
- a trial stopped before the budget is never scored, and removing the censored trials changes no
  interval, threshold or verdict (except that an optimizer with nothing else disappears);
- an optimizer is "unknown" exactly when none of its trials reached the budget and some were
  censored (with only failures it has "no sweet spot": every sampled lr is known to fail);
- each closed edge's resolution is the distance to the nearest sampled lr beyond it that does not
  qualify.
"""

from __future__ import annotations

import math
import os
import random

import pytest

from sweetspot.analysis.results import load_results
from sweetspot.analysis.sweetspot import find_sweet_spots
from tests.analysis_tests.folders import FLOOR, row, trial, write_results

GRID = [10 ** (k / 2) for k in range(-12, -3)]  # 1e-6 .. 3.2e-2, half a decade apart
FATES = ("full", "asha", "diverged", "collapsed", "errored")
CENSORED_FATES = ("asha", "errored")


def _random_trials(rng: random.Random, budget: int) -> list[tuple[str, dict]]:
    """(fate, trial) pairs: per optimizer a peak in log10 lr, scores falling off around it, noise."""
    out = []
    for optimizer in rng.sample(["adam", "adamw", "adagrad"], k=rng.randint(1, 3)):
        peak, height = rng.uniform(-5.5, -3.0), rng.uniform(0.33, 0.7)
        stopped_early = rng.random() < 0.15  # every trial of this optimizer stopped by ASHA: unknown at the budget
        for lr in rng.sample(GRID, k=rng.randint(1, len(GRID))):
            for wd in rng.sample([0.0, 0.01], k=rng.randint(1, 2)):
                for seed in range(rng.choice([1, 1, 2])):
                    p1 = max(FLOOR - 0.05, height - 0.12 * abs(math.log10(lr) - peak) + rng.gauss(0, 0.02))
                    climb = [p1 * (0.6 + 0.4 * e / budget) for e in range(1, budget + 1)]  # best at the budget
                    fate = "asha" if stopped_early else rng.choices(FATES, weights=(6, 2, 1, 1, 1))[0]
                    stop = rng.randint(1, budget - 1)
                    rows = {
                        "full": [row(e, v) for e, v in enumerate(climb, start=1)],
                        "asha": [row(e, v) for e, v in enumerate(climb[:stop], start=1)],
                        "errored": [row(e, v) for e, v in enumerate(climb[:stop], start=1)],
                        "diverged": [row(e, v) for e, v in enumerate(climb[: stop - 1], start=1)] + [row(stop, 0.0, diverged=1)],
                        "collapsed": [row(1, FLOOR, entropy=0.0), row(2, FLOOR, entropy=0.0)],  # patience 2 < budget
                    }[fate]
                    status = {"full": "terminated", "asha": "early_stopped"}.get(fate, fate)
                    trial_id = f"{optimizer}_{len(out):03d}"
                    out.append((fate, trial(trial_id, optimizer, lr, rows=rows, wd=wd, seed=seed, status=status)))
    return out


def _inside(lr: float, spot) -> bool:
    return any(i.lower_lr * (1 - 1e-9) <= lr <= i.upper_lr * (1 + 1e-9) for i in spot.intervals)


# 13 of the first 100 seeds, chosen so that every branch below is drawn at least 3 times under each
# rule: both budgets, every delta and fate, every verdict, open and closed edges, several intervals of
# one optimizer, two seeds of one configuration, an optimizer left with only censored trials, no trial
# left after the censored ones go. Checked to fail, like all 100, on a broken rule (a resolution
# measured from the qualifying point instead of the edge; "unknown" for an optimizer that also has a
# scored trial; an edge at the range's end not called open). Set SWEETSPOT_ALL_SEEDS=1 for all 100.
SEEDS = range(100) if os.environ.get("SWEETSPOT_ALL_SEEDS") == "1" else (2, 3, 4, 5, 7, 20, 22, 32, 39, 53, 63, 68, 93)


@pytest.mark.parametrize("rule", ["trains", "near-best"])
@pytest.mark.parametrize("seed", SEEDS)
def test_sweet_spots_at_the_budget_hold_their_invariants(tmp_path, seed, rule):
    rng = random.Random(seed)
    budget, delta = rng.choice([3, 4]), rng.choice([0.02, 0.1, 0.3])
    drawn = _random_trials(rng, budget)
    fate = {t["trial_id"]: f for f, t in drawn}
    spots = find_sweet_spots(
        load_results(write_results(tmp_path / "all", [t for _, t in drawn], epochs=budget, collapse_patience=2)),
        delta=delta,
        rule=rule,
    )
    assert spots.rule == rule
    assert spots.comparison.epoch == budget and spots.comparison.source == "budget"
    by_name = {s.optimizer: s for s in spots.optimizers}

    for trial_id, score in spots.comparison.scores.items():
        expected = {"full": "scored", "diverged": "failed", "collapsed": "failed"}.get(fate[trial_id], "censored")
        assert score.outcome == expected, (seed, trial_id)
        if expected == "censored":
            assert math.isnan(score.value) and all(trial_id not in c.trial_ids for c in spots.configs)
            assert score.rank is not None and 1 <= score.rank <= score.rank_of

    qualifying = [c for c in spots.configs if spots.qualifies(c.value)]
    for c in qualifying:
        assert by_name[c.optimizer].verdict == "found" and _inside(c.lr, by_name[c.optimizer]), (seed, c)
    for name, spot in by_name.items():
        fates = {f for f, t in drawn if t["config"]["optimizer"] == name}
        assert (spot.verdict == "unknown") == ("full" not in fates and bool(fates & set(CENSORED_FATES))), (seed, name)
        assert spot.found == any(c.optimizer == name for c in qualifying), (seed, name)
        lrs = sorted({c.lr for c in spots.configs if c.optimizer == name})
        bad = [lr for lr in lrs if not any(spots.qualifies(c.value) for c in spots.configs if c.optimizer == name and c.lr == lr)]
        for i in spot.intervals:
            below, above = [lr for lr in bad if lr < i.lower_lr], [lr for lr in bad if lr > i.upper_lr]
            # The true edge lies in its bracket (the nearest non-qualifying sampled lr beyond, the outermost
            # sampled lr inside): the resolution is the farther of the two from the interpolated edge.
            inside = [lr for lr in lrs if i.lower_lr * (1 - 1e-9) <= lr <= i.upper_lr * (1 + 1e-9)]
            assert (
                i.lower_resolution is None
                if i.lower_open
                else (
                    i.lower_bracket == (max(below), min(inside))
                    and i.lower_resolution
                    == pytest.approx(max(math.log10(i.lower_lr / max(below)), math.log10(min(inside) / i.lower_lr)))
                )
            ), (seed, i)
            assert (
                i.upper_resolution is None
                if i.upper_open
                else (
                    i.upper_bracket == (max(inside), min(above))
                    and i.upper_resolution
                    == pytest.approx(max(math.log10(min(above) / i.upper_lr), math.log10(i.upper_lr / max(inside))))
                )
            ), (seed, i)

    # Censored trials carry no weight: without them, the same threshold and intervals, and the same
    # verdicts but for "unknown" (which becomes "no sweet spot", or no optimizer, with nothing left).
    kept = [t for f, t in drawn if f not in CENSORED_FATES]
    if kept:
        without = find_sweet_spots(
            load_results(write_results(tmp_path / "kept", kept, epochs=budget, collapse_patience=2)), delta=delta, rule=rule
        )
        assert without.threshold == spots.threshold
        for spot in without.optimizers:
            before = by_name[spot.optimizer]
            assert spot.intervals == before.intervals and spot.verdict == before.verdict.replace("unknown", "none"), seed
        assert {s.optimizer for s in spots.optimizers} - {s.optimizer for s in without.optimizers} <= {
            s.optimizer for s in spots.optimizers if s.verdict == "unknown"
        }
