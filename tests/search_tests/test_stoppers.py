"""The Tune stoppers (search/stoppers.py): what they stop, and what they keep of a trial meanwhile."""

from __future__ import annotations

from sweetspot.search.stoppers import CollapseStopper, EarlyCollapseStopper
from sweetspot.trainable import keys
from sweetspot.trainable.collapse import SIGNALS

BULK = {f"extra_{i}": [0.0] * 100 for i in range(20)}  # what else a full result carries (config, timings, ...)


def test_the_collapse_stopper_keeps_nothing_of_a_trial_that_is_not_collapsed():
    stop = CollapseStopper(patience=2)
    for e in (1, 2, 3):
        assert not stop("t1", {**BULK, keys.EPOCH: e, keys.COLLAPSED: 0})
    assert stop("t2", {**BULK, keys.EPOCH: 1, keys.COLLAPSED: 1}) is False
    assert stop("t2", {**BULK, keys.EPOCH: 1.5, keys.COLLAPSED: 1}) is False  # a mid-epoch report is no epoch end
    assert stop("t2", {**BULK, keys.EPOCH: 2, keys.COLLAPSED: 1}) is True
    assert stop._ends == {}  # t1 never collapsed; t2 ended


def test_the_early_collapse_stopper_keeps_only_the_rules_inputs_and_forgets_a_decided_trial():
    stop = EarlyCollapseStopper(budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01)
    healthy = {
        keys.VAL_PRED_ENTROPY: 0.5,
        keys.VAL_TRUE_ENTROPY: 0.8,
        keys.VAL_P1: 0.39,
        keys.MAJORITY_P1: 0.39,
        keys.VAL_EMBED_RANK: 50.0,
        keys.TRAIN_LOSS_RECENT: 0.1,
        keys.PRIOR_BCE: 0.15,
    }
    assert not stop("t1", {**BULK, **healthy, keys.EPOCH: 1 / 3})
    (row,) = stop._rows["t1"]
    assert set(row) <= set(SIGNALS)
    for e in range(2, 10):  # past the decision window (half the budget): nothing left to decide
        assert not stop("t1", {**BULK, **healthy, keys.EPOCH: e / 3})
    assert "t1" not in stop._rows
    assert not stop("t2", {**BULK, **healthy, keys.VAL_P1: 0.6, keys.EPOCH: 1 / 3})  # left the floor: decided
    assert "t2" not in stop._rows
