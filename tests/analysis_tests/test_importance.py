"""Optuna's PED-ANOVA and fANOVA over trials whose score depends on lr only."""

from __future__ import annotations

import math

from sweetspot.analysis.importance import MIN_TRIALS, param_importances
from sweetspot.analysis.results import load_results
from sweetspot.analysis.sweetspot import compare_at_budget
from tests.analysis_tests.folders import row, trial, write_results


def _importances(folder):
    results = load_results(folder)
    return param_importances(results, compare_at_budget(results, metric="val_p1", mode="max"))


def test_lr_matters_and_the_optimizer_does_not(tmp_path):
    trials = []
    for i, exponent in enumerate([-6, -5.5, -5, -4.5, -4, -3.5, -3, -2.5, -2, -1.5]):
        p1 = 0.6 - 0.1 * abs(exponent + 4)  # a peak at 1e-4, whatever the optimizer
        for optimizer in ("adam", "adamw"):
            trials.append(trial(f"{optimizer}{i}", optimizer, 10**exponent, [p1]))
    imp = _importances(write_results(tmp_path / "r", trials, epochs=1))
    assert imp.available and imp.n_trials == 20 and set(imp.params) == {"optimizer", "lr"}  # weight decay is constant
    for scores in (imp.ped_anova, imp.fanova):
        assert scores["lr"] > 0.8 and scores["lr"] > scores["optimizer"]
        assert math.isclose(sum(scores.values()), 1.0, rel_tol=1e-6)


def test_too_few_trials_or_no_variation_say_why(tmp_path):
    few = _importances(
        write_results(tmp_path / "few", [trial(f"t{i}", "adam", 10**-i, [0.5]) for i in range(MIN_TRIALS - 1)], epochs=1)
    )
    assert not few.available and f"at least {MIN_TRIALS}" in few.reason
    flat = _importances(write_results(tmp_path / "flat", [trial(f"t{i}", "adam", 10**-i, [0.5]) for i in range(6)], epochs=1))
    assert not flat.available and "same score" in flat.reason
    diverged = [trial(f"t{i}", "adam", 10**-i, rows=[row(1, 0.5), row(2, 0.0, diverged=1)], status="diverged") for i in range(6)]
    none = _importances(write_results(tmp_path / "div", diverged))
    assert not none.available and none.n_trials == 0
