"""Sweet spots on hand-written results folders whose intervals follow from the rule by hand."""

from __future__ import annotations

import math

import pytest

from sweetspot.analysis.results import load_results
from sweetspot.analysis.sweetspot import find_sweet_spots
from sweetspot.analysis.report import _interval_text
from tests.analysis_tests.folders import FLOOR, row, trial, write_results


def near_best(results, **kwargs):
    """Most tests here pin the interval mechanics under the `near-best` threshold."""
    return find_sweet_spots(results, rule="near-best", **kwargs)


def _log(x: float) -> float:
    return math.log10(x)


def _spot(spots, optimizer):
    return next(s for s in spots.optimizers if s.optimizer == optimizer)


def test_interval_interpolates_log_lr_between_sampled_points(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("a1", "adam", 1e-5, [0.35, 0.40]), trial("a2", "adam", 1e-4, [0.50, 0.60]),
        trial("a3", "adam", 1e-3, [0.60, 0.55]), trial("a4", "adam", 1e-2, [0.30, 0.30]),
        trial("g1", "adagrad", 1e-3, [0.33, 0.35]), trial("g2", "adagrad", 1e-2, [0.31, 0.31]),
    ], epochs=2)
    spots = near_best(load_results(folder), delta=0.02)
    assert spots.best.optimizer == "adam" and spots.best.value == pytest.approx(0.60)
    assert spots.threshold == pytest.approx(0.60 * 0.98)
    (interval,) = _spot(spots, "adam").intervals
    # Below: from (−5, 0.40) to (−4, 0.60) the line reaches 0.588 at −4 − 0.012/0.2. Above: from
    # (−3, 0.60) to (−2, 0.30) it leaves 0.588 at −3 + 0.012/0.3.
    assert _log(interval.lower_lr) == pytest.approx(-4.06)
    assert _log(interval.upper_lr) == pytest.approx(-2.96)
    assert interval.width_decades == pytest.approx(1.10)
    assert interval.best_lr == pytest.approx(1e-4) and interval.n_trials == 2  # ties: the smaller lr
    assert not interval.lower_open and not interval.upper_open
    assert _spot(spots, "adagrad").intervals == () and not _spot(spots, "adagrad").found


def test_no_sweet_spot_anywhere_when_the_best_run_sits_at_the_floor(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("a", "adam", 1e-4, rows=[row(1, 0.30, entropy=0.0), row(2, 0.305, entropy=0.0)]),
        trial("b", "adam", 1e-2, rows=[row(1, 0.30, entropy=0.0), row(2, 0.30, entropy=0.0)]),
    ], epochs=2)
    spots = near_best(load_results(folder))
    assert spots.best is not None and "floor" in spots.note
    assert all(not s.found for s in spots.optimizers)


def test_edges_of_the_sampled_range_are_open_and_one_lr_has_width_zero(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("a1", "adam", 1e-5, [0.60]), trial("a2", "adam", 1e-4, [0.40]),
        trial("w1", "adamw", 3e-4, [0.595]),
    ], epochs=1)
    spots = near_best(load_results(folder), delta=0.02)
    (adam,) = _spot(spots, "adam").intervals
    assert adam.lower_open and not adam.upper_open and adam.lower_lr == pytest.approx(1e-5)
    assert _log(adam.upper_lr) == pytest.approx(-5 + 0.012 / 0.2)
    (adamw,) = _spot(spots, "adamw").intervals
    assert adamw.width_decades == 0.0 and adamw.lower_lr == adamw.upper_lr == pytest.approx(3e-4)
    assert adamw.lower_open and adamw.upper_open and adamw.lower_resolution is None and adamw.upper_resolution is None
    assert "(0.00 decades; the only sampled lr, open on both sides)" in _interval_text(adamw)
    assert "(0.06 decades; open below, upper edge ±0.94 decade)" in _interval_text(adam)


def test_weight_decay_gives_a_region_of_lr_intervals_per_decay(tmp_path):
    values = {(1e-4, 0.0): 0.60, (1e-3, 0.0): 0.50, (1e-4, 0.01): 0.59, (1e-3, 0.01): 0.59,
              (1e-4, 0.1): 0.40, (1e-3, 0.1): 0.45}
    folder = write_results(tmp_path / "r", [trial(f"t{i}", "adam", lr, [v], wd=wd) for i, ((lr, wd), v) in enumerate(values.items())],
                           epochs=1)
    spots = near_best(load_results(folder), delta=0.02)
    (region,) = spots.regions
    by_wd = {s.weight_decay: s.intervals for s in region.slices}
    (wd0,) = by_wd[0.0]
    assert wd0.lower_lr == pytest.approx(1e-4) and _log(wd0.upper_lr) == pytest.approx(-4 + 0.012 / 0.1)
    (wd001,) = by_wd[0.01]
    assert (wd001.lower_lr, wd001.upper_lr, wd001.width_decades) == pytest.approx((1e-4, 1e-3, 1.0))
    assert by_wd[0.1] == ()
    assert region.bounds == pytest.approx({"lr_low": 1e-4, "lr_high": 1e-3, "weight_decay_low": 0.0, "weight_decay_high": 0.01})
    # The 1-D spot takes, per lr, the best weight decay: 0.60 at 1e-4 (wd 0), 0.59 at 1e-3 (wd 0.01).
    (interval,) = _spot(spots, "adam").intervals
    assert (interval.lower_lr, interval.upper_lr) == pytest.approx((1e-4, 1e-3))
    assert interval.best_weight_decay == 0.0 and interval.n_trials == 2


def test_seeds_score_a_configuration_by_mean_minus_std(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("s0", "adam", 1e-4, [0.60], seed=0), trial("s1", "adam", 1e-4, [0.62], seed=1),
        trial("u0", "adam", 1e-3, [0.50], seed=0), trial("u1", "adam", 1e-3, [0.70], seed=1),  # one lucky seed
    ], epochs=1)
    spots = near_best(load_results(folder), delta=0.02)
    steady = 0.61 - math.sqrt(2 * 0.01 ** 2)  # sample std of (0.60, 0.62)
    lucky = 0.60 - math.sqrt(2 * 0.1 ** 2)
    assert spots.best.lr == pytest.approx(1e-4) and spots.best.value == pytest.approx(steady)
    assert spots.best.n_trials == 2
    (interval,) = _spot(spots, "adam").intervals
    level = steady * 0.98
    assert _log(interval.upper_lr) == pytest.approx(-4 + (level - steady) / (lucky - steady))
    assert interval.n_trials == 2


def test_asha_stopped_trials_are_censored_and_the_folder_is_read_at_the_budget(tmp_path):
    """A TPE + ASHA folder: trials stopped at epoch 1 (where even good runs sit low) are shown with
    their epoch and rank there, never scored as if epoch 1 were the budget; an optimizer with no trial
    at the budget is unknown, not "no sweet spot". `epoch=1` still reads the folder at epoch 1."""
    folder = write_results(tmp_path / "r", [
        trial("long", "adam", 1e-4, [0.40, 0.50, 0.70]),
        trial("cut", "adam", 1e-3, [0.45], status="early_stopped"),
        trial("low", "adam", 1e-5, [0.32, 0.35, 0.36]),
        trial("g", "adagrad", 1e-2, [0.50], status="early_stopped"),
    ], epochs=3)
    results = load_results(folder)
    spots = near_best(results)
    assert (spots.comparison.epoch, spots.comparison.budget, spots.comparison.source) == (3, 3, "budget")
    assert spots.comparison.rule.startswith("epoch 3 (the budget, train.epochs)")
    assert spots.best.lr == pytest.approx(1e-4) and spots.best.value == pytest.approx(0.70)
    cut = spots.comparison.scores["cut"]
    assert cut.censored and math.isnan(cut.value) and cut.reason == "stopped by the scheduler at epoch 1"
    assert (cut.rank, cut.rank_of) == (2, 4)  # at epoch 1: g 0.50, cut 0.45, long 0.40, low 0.32
    assert all("cut" not in c.trial_ids for c in spots.configs)
    adam, adagrad = _spot(spots, "adam"), _spot(spots, "adagrad")
    (interval,) = adam.intervals
    assert interval.upper_open and interval.upper_lr == pytest.approx(1e-4)  # 1e-3 is unknown at epoch 3: open above
    assert adam.verdict == "found" and adam.censored == ("cut",)
    assert adagrad.verdict == "unknown" and not adagrad.found and adagrad.censored == ("g",)
    assert spots.verdict_text(adagrad) == "unknown (no trial reached 3 epochs)"
    at1 = near_best(results, epoch=1)
    assert at1.comparison.source == "user" and not at1.comparison.censored
    assert at1.best.optimizer == "adagrad" and at1.best.value == pytest.approx(0.50)


def test_edges_carry_their_resolution_in_decades(tmp_path):
    values = {-5: 0.30, -4.5: 0.50, -4: 0.60, -3.5: 0.60, -3: 0.40}
    folder = write_results(tmp_path / "r", [trial(f"t{k}", "adam", 10 ** k, [v]) for k, v in values.items()], epochs=1)
    (interval,) = _spot(near_best(load_results(folder), delta=0.02), "adam").intervals
    # The threshold 0.588 is crossed 0.12 of the way from 1e-4 down to 10^-4.5, and 0.06 of the way
    # from 10^-3.5 up to 1e-3: the edges are 0.44 and 0.47 decade from those non-qualifying lrs.
    assert _log(interval.lower_lr) == pytest.approx(-4.06) and _log(interval.upper_lr) == pytest.approx(-3.47)
    assert interval.lower_resolution == pytest.approx(0.44) and interval.upper_resolution == pytest.approx(0.47)
    assert _interval_text(interval).startswith("lr 8.71e-05 .. 3.39e-04 (0.59 decades; edges ±0.44 / ±0.47 decade)")


def test_a_collapse_stopped_trial_is_a_known_failure_that_bounds_an_interval(tmp_path):
    collapsed = [row(1, FLOOR, entropy=0.0), row(2, FLOOR, entropy=0.0)]
    folder = write_results(tmp_path / "r", [
        trial("a", "adam", 1e-5, [0.50, 0.55, 0.60]), trial("b", "adam", 1e-4, [0.50, 0.58, 0.60]),
        trial("c", "adam", 1e-3, rows=collapsed, status="collapsed"),
        trial("d", "adamw", 1e-5, [0.50, 0.55, 0.60]), trial("e", "adamw", 1e-4, [0.50, 0.58, 0.60]),
        trial("f", "adamw", 1e-3, rows=collapsed[:1], status="early_stopped"),  # ASHA-stopped at the floor: unknown at epoch 3
    ], epochs=3, collapse_patience=2)
    spots = near_best(load_results(folder))
    assert spots.comparison.scores["c"].outcome == "failed" and spots.comparison.scores["c"].reason == "stopped collapsed at epoch 2"
    failed = next(c for c in spots.configs if c.trial_ids == ("c",))
    assert failed.collapsed and failed.failed and failed.value == -math.inf
    (adam,) = _spot(spots, "adam").intervals
    assert adam.upper_lr == pytest.approx(1e-4) and not adam.upper_open and adam.upper_resolution == pytest.approx(1.0)
    (adamw,) = _spot(spots, "adamw").intervals
    assert adamw.upper_lr == pytest.approx(1e-4) and adamw.upper_open and adamw.upper_resolution is None


def test_a_diverged_lr_bounds_the_interval_at_its_neighbour(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("a", "adam", 1e-5, [0.60, 0.60]),
        trial("b", "adam", 1e-4, rows=[row(1, 0.60), row(2, 0.0, diverged=1)], status="diverged"),
        trial("c", "adam", 1e-3, [0.60, 0.60]),
    ], epochs=2)
    spots = near_best(load_results(folder), epoch=2)
    low, high = _spot(spots, "adam").intervals
    assert (low.lower_lr, low.upper_lr) == pytest.approx((1e-5, 1e-5))
    assert (high.lower_lr, high.upper_lr) == pytest.approx((1e-3, 1e-3))
    assert low.upper_resolution == pytest.approx(1.0) and high.lower_resolution == pytest.approx(1.0)
    diverged = next(c for c in spots.configs if c.lr == pytest.approx(1e-4))
    assert diverged.diverged and diverged.value == -math.inf


def test_nan_metrics_are_skipped_and_losses_are_minimised(tmp_path):
    folder = write_results(tmp_path / "r", [
        trial("a", "adam", 1e-4, rows=[row(1, float("nan")), row(2, 0.55)]),
        trial("b", "adam", 1e-3, rows=[row(1, float("nan"))], status="errored"),
        trial("c", "adam", 1e-2, [0.40, 0.41]),
    ], epochs=2)
    results = load_results(folder)
    spots = near_best(results)
    assert math.isnan(spots.comparison.scores["b"].value)
    assert sorted(c.lr for c in spots.configs) == pytest.approx([1e-4, 1e-2])  # b has no score: not a point
    assert spots.best.lr == pytest.approx(1e-4) and spots.best.value == pytest.approx(0.55)
    loss = near_best(load_results(folder, metric="val_loss"))
    assert loss.mode == "min" and loss.best.lr == pytest.approx(1e-4)  # val_loss = 0.4 − 0.01 × P@1
    assert loss.threshold == pytest.approx(loss.best.value * 1.02)


def test_negative_delta_is_refused(tmp_path):
    folder = write_results(tmp_path / "r", [trial("a", "adam", 1e-4, [0.5])], epochs=1)
    with pytest.raises(ValueError, match="delta"):
        near_best(load_results(folder), delta=-0.1)


def test_the_trains_rule_gives_each_optimizer_its_region_above_the_floor_whatever_the_best_run(tmp_path):
    # adam trains far better than adagrad; near-best sees only adam, trains sees both regions
    folder = write_results(tmp_path / "r", [
        trial("a1", "adam", 1e-5, [0.31, 0.31]), trial("a2", "adam", 1e-4, [0.50, 0.60]), trial("a3", "adam", 1e-3, [0.30, 0.30]),
        trial("g1", "adagrad", 1e-3, [0.31, 0.31]), trial("g2", "adagrad", 1e-2, [0.36, 0.40]),
        trial("g3", "adagrad", 1e-1, [0.30, 0.30]),
    ], epochs=2)
    results = load_results(folder)
    trains = find_sweet_spots(results)  # the default rule
    assert trains.rule == "trains" and trains.floor == pytest.approx(FLOOR + 0.01)
    assert trains.threshold == pytest.approx(1.02 * (FLOOR + 0.01))
    assert _spot(trains, "adagrad").found and _spot(trains, "adam").found
    (g,) = _spot(trains, "adagrad").intervals
    # from (-3, 0.31) to (-2, 0.40) the line crosses 0.3162 at -3 + 0.0062/0.09
    assert _log(g.lower_lr) == pytest.approx(-3 + (1.02 * 0.31 - 0.31) / 0.09)
    near = find_sweet_spots(results, rule="near-best")
    assert _spot(near, "adam").found and not _spot(near, "adagrad").found


def test_the_trains_rule_falls_back_to_near_best_for_a_metric_without_a_floor(tmp_path):
    folder = write_results(tmp_path / "r", [trial("a1", "adam", 1e-4, [0.5]), trial("a2", "adam", 1e-3, [0.4])], epochs=1)
    spots = find_sweet_spots(load_results(folder, metric="val_p3"))
    assert spots.rule == "near-best" and "no majority-label floor" in spots.note
    with pytest.raises(ValueError, match="rule must be one of"):
        find_sweet_spots(load_results(folder), rule="best")
