"""The recovery score of an answer's sweet spots against a ground truth's, on hand-built folders
whose intervals are known: both sides are computed by the same analysis (`find_sweet_spots`)."""

from __future__ import annotations

import math

import pytest

from sweetspot.analysis.recovery import score
from sweetspot.analysis.results import load_results
from sweetspot.analysis.sweetspot import find_sweet_spots
from tests.analysis_tests.folders import row, trial, write_results

BUDGET = 2


def _spots(folder, runs, **kwargs):
    """Sweet spots of a folder of (optimizer, log10 lr, final P@1 or "diverged" or "asha") runs."""
    trials = []
    for i, (optimizer, exponent, outcome) in enumerate(runs):
        if outcome == "diverged":
            trials.append(trial(f"t{i}", optimizer, 10**exponent, rows=[row(1, 0.3), row(2, 0.0, diverged=1)]))
        elif outcome == "asha":
            trials.append(trial(f"t{i}", optimizer, 10**exponent, [0.4], status="early_stopped"))
        else:
            trials.append(trial(f"t{i}", optimizer, 10**exponent, [0.35, outcome]))
    return find_sweet_spots(load_results(write_results(folder, trials, epochs=BUDGET)), **{"rule": "near-best", **kwargs})


# The truth: adam trains at 1e-4 .. 1e-3 (failing half a decade beyond: edges at sampled lrs), adagrad nowhere.
TRUTH = [
    ("adam", -4.5, "diverged"),
    ("adam", -4, 0.60),
    ("adam", -3.5, 0.60),
    ("adam", -3, 0.60),
    ("adam", -2.5, "diverged"),
    ("adagrad", -3, 0.40),
    ("adagrad", -2, 0.42),
]


def test_an_answer_identical_to_the_truth_scores_perfectly(tmp_path):
    truth = _spots(tmp_path / "truth", TRUTH)
    again = _spots(tmp_path / "again", TRUTH)
    r = score(again, truth)
    assert [(o.optimizer, o.truth, o.answer, o.agree) for o in r.optimizers] == [
        ("adagrad", "none", "none", True),
        ("adam", "found", "found", True),
    ]
    adam = r.optimizers[1]
    assert (adam.lower_error, adam.upper_error, adam.iou) == (0.0, 0.0, 1.0) and r.optimizers[0].iou is None
    assert r.agreement == 1.0 and r.regret == 0.0 and r.trial_epochs_fraction == 1.0
    assert r.edge_errors == (0.0, 0.0)


def test_a_shifted_interval_has_known_edge_errors_and_iou(tmp_path):
    truth = _spots(tmp_path / "truth", TRUTH)
    shifted = [
        ("adam", -4, "diverged"),
        ("adam", -3.5, 0.60),
        ("adam", -3, 0.60),
        ("adam", -2.5, 0.60),
        ("adam", -2, "diverged"),
        ("adagrad", -3, 0.40),
    ]
    r = score(_spots(tmp_path / "answer", shifted), truth)
    adam = next(o for o in r.optimizers if o.optimizer == "adam")
    # truth [-4, -3], answer [-3.5, -2.5] in log10 lr: each edge half a decade off; 0.5 shared of 1.5.
    assert (adam.lower_error, adam.upper_error) == pytest.approx((0.5, 0.5))
    assert adam.iou == pytest.approx(1 / 3) and adam.agree
    assert r.regret == 0.0  # its best (ties: the smallest lr, 10^-3.5) is a best configuration of the truth
    assert r.trial_epochs_fraction == pytest.approx(6 / 7)  # 6 trials × 2 epochs of the truth's 7 × 2


def test_a_missing_sweet_spot_is_a_disagreement(tmp_path):
    truth = _spots(tmp_path / "truth", TRUTH)
    answer = _spots(tmp_path / "answer", [("adam", -4, 0.45), ("adam", -3, 0.44), ("adagrad", -2, 0.60), ("adagrad", -3, 0.30)])
    r = score(answer, truth)
    adam, adagrad = (next(o for o in r.optimizers if o.optimizer == name) for name in ("adam", "adagrad"))
    assert (adam.truth, adam.answer, adam.agree, adam.iou, adam.lower_error) == ("found", "none", False, 0.0, None)
    assert (adagrad.truth, adagrad.answer, adagrad.agree, adagrad.iou) == ("none", "found", False, 0.0)
    assert r.agreement == 0.0 and r.edge_errors == ()
    # The answer's best is adagrad at 1e-2, which scores 0.42 in the truth against its best 0.60.
    assert r.regret == pytest.approx((0.60 - 0.42) / 0.60)


def test_unsampled_and_censored_optimizers_are_unknown_and_a_failing_pick_has_infinite_regret(tmp_path):
    truth = _spots(tmp_path / "truth", TRUTH)
    # Only adagrad, stopped by ASHA: adam never sampled, adagrad unknown at the budget, and no best
    # configuration to compute a regret for.
    stopped = score(_spots(tmp_path / "stopped", [("adagrad", -3, "asha")]), truth)
    assert [(o.optimizer, o.answer, o.agree) for o in stopped.optimizers] == [
        ("adagrad", "unknown", False),
        ("adam", "unknown", False),
    ]
    assert stopped.regret is None and stopped.trial_epochs_fraction == pytest.approx(1 / 14)
    # An answer whose best lr diverges in the truth.
    risky = score(_spots(tmp_path / "risky", [("adam", -2.5, 0.61), ("adam", -3, 0.60)]), truth)
    assert risky.regret == math.inf


def test_answers_read_differently_are_refused(tmp_path):
    truth = _spots(tmp_path / "truth", TRUTH)
    with pytest.raises(ValueError, match="delta"):
        score(_spots(tmp_path / "a", TRUTH, delta=0.1), truth)
    with pytest.raises(ValueError, match="different epochs"):
        score(_spots(tmp_path / "b", TRUTH, epoch=1), truth)
