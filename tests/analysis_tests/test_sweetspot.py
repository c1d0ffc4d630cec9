"""Sweet spots on hand-written results folders whose intervals follow from the rule by hand."""

from __future__ import annotations

import json
import math

import pytest

from sweetspot.analysis.report import _interval_text
from sweetspot.analysis.results import load_results, results_from_table
from sweetspot.analysis.sweetspot import find_sweet_spots
from tests.analysis_tests.folders import FLOOR, row, trial, write_results
from tests.conftest import REPO


def near_best(results, **kwargs):
    """Most tests here pin the interval mechanics under the `near-best` threshold."""
    return find_sweet_spots(results, rule="near-best", **kwargs)


def _log(x: float) -> float:
    return math.log10(x)


def _spot(spots, optimizer):
    return next(s for s in spots.optimizers if s.optimizer == optimizer)


def test_interval_interpolates_log_lr_between_sampled_points(tmp_path):
    folder = write_results(
        tmp_path / "r",
        [
            trial("a1", "adam", 1e-5, [0.35, 0.40]),
            trial("a2", "adam", 1e-4, [0.50, 0.60]),
            trial("a3", "adam", 1e-3, [0.60, 0.55]),
            trial("a4", "adam", 1e-2, [0.30, 0.30]),
            trial("g1", "adagrad", 1e-3, [0.33, 0.35]),
            trial("g2", "adagrad", 1e-2, [0.31, 0.31]),
        ],
        epochs=2,
    )
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
    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-4, rows=[row(1, 0.30, entropy=0.5), row(2, 0.305, entropy=0.5)]),  # at the floor, not constant
            trial("b", "adam", 1e-2, rows=[row(1, 0.30, entropy=0.5), row(2, 0.30, entropy=0.5)]),
        ],
        epochs=2,
    )
    spots = near_best(load_results(folder))
    assert spots.best is not None and "floor" in spots.note
    assert all(not s.found for s in spots.optimizers)


def test_edges_of_the_sampled_range_are_open_and_one_lr_has_width_zero(tmp_path):
    folder = write_results(
        tmp_path / "r",
        [
            trial("a1", "adam", 1e-5, [0.60]),
            trial("a2", "adam", 1e-4, [0.40]),
            trial("w1", "adamw", 3e-4, [0.595]),
        ],
        epochs=1,
    )
    spots = near_best(load_results(folder), delta=0.02)
    (adam,) = _spot(spots, "adam").intervals
    assert adam.lower_open and not adam.upper_open and adam.lower_lr == pytest.approx(1e-5)
    assert _log(adam.upper_lr) == pytest.approx(-5 + 0.012 / 0.2)
    (adamw,) = _spot(spots, "adamw").intervals
    assert adamw.width_decades == 0.0 and adamw.lower_lr == adamw.upper_lr == pytest.approx(3e-4)
    assert adamw.lower_open and adamw.upper_open and adamw.lower_resolution is None and adamw.upper_resolution is None
    assert "lr 3.0e-04, the only lr scored (edges unknown)" in _interval_text(adamw)
    assert _interval_text(adam).startswith(
        "lr open below 1.0e-05 .. between 1.0e-05 and 1.0e-04 (not resolved), 0.1 decades or more"
    )


def test_weight_decay_gives_a_region_of_lr_intervals_per_decay(tmp_path):
    values = {(1e-4, 0.0): 0.60, (1e-3, 0.0): 0.50, (1e-4, 0.01): 0.59, (1e-3, 0.01): 0.59, (1e-4, 0.1): 0.40, (1e-3, 0.1): 0.45}
    folder = write_results(
        tmp_path / "r", [trial(f"t{i}", "adam", lr, [v], wd=wd) for i, ((lr, wd), v) in enumerate(values.items())], epochs=1
    )
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
    folder = write_results(
        tmp_path / "r",
        [
            trial("s0", "adam", 1e-4, [0.60], seed=0),
            trial("s1", "adam", 1e-4, [0.62], seed=1),
            trial("u0", "adam", 1e-3, [0.50], seed=0),
            trial("u1", "adam", 1e-3, [0.70], seed=1),  # one lucky seed
        ],
        epochs=1,
    )
    spots = near_best(load_results(folder), delta=0.02)
    steady = 0.61 - math.sqrt(2 * 0.01**2)  # sample std of (0.60, 0.62)
    lucky = 0.60 - math.sqrt(2 * 0.1**2)
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
    folder = write_results(
        tmp_path / "r",
        [
            trial("long", "adam", 1e-4, [0.40, 0.50, 0.70]),
            trial("cut", "adam", 1e-3, [0.45], status="early_stopped"),
            trial("low", "adam", 1e-5, [0.32, 0.35, 0.36]),
            trial("g", "adagrad", 1e-2, [0.50], status="early_stopped"),
        ],
        epochs=3,
    )
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
    folder = write_results(tmp_path / "r", [trial(f"t{k}", "adam", 10**k, [v]) for k, v in values.items()], epochs=1)
    (interval,) = _spot(near_best(load_results(folder), delta=0.02), "adam").intervals
    # The threshold 0.588 is crossed 0.12 of the way from 1e-4 down to 10^-4.5, and 0.06 of the way
    # from 10^-3.5 up to 1e-3: the edges are 0.44 and 0.47 decade from those non-qualifying lrs.
    assert _log(interval.lower_lr) == pytest.approx(-4.06) and _log(interval.upper_lr) == pytest.approx(-3.47)
    assert interval.lower_resolution == pytest.approx(0.44) and interval.upper_resolution == pytest.approx(0.47)
    assert _interval_text(interval).startswith("lr 8.7e-05 (±0.44 decade) .. 3.4e-04 (±0.47 decade), 0.6 decades")


def test_a_collapse_stopped_trial_is_a_known_failure_that_bounds_an_interval(tmp_path):
    collapsed = [row(1, FLOOR, entropy=0.0), row(2, FLOOR, entropy=0.0)]
    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-5, [0.50, 0.55, 0.60]),
            trial("b", "adam", 1e-4, [0.50, 0.58, 0.60]),
            trial("c", "adam", 1e-3, rows=collapsed, status="collapsed"),
            trial("d", "adamw", 1e-5, [0.50, 0.55, 0.60]),
            trial("e", "adamw", 1e-4, [0.50, 0.58, 0.60]),
            trial(
                "f", "adamw", 1e-3, rows=collapsed[:1], status="early_stopped"
            ),  # ASHA-stopped at the floor: unknown at epoch 3
        ],
        epochs=3,
        collapse_patience=2,
    )
    spots = near_best(load_results(folder))
    assert (
        spots.comparison.scores["c"].outcome == "failed" and spots.comparison.scores["c"].reason == "stopped collapsed at epoch 2"
    )
    failed = next(c for c in spots.configs if c.trial_ids == ("c",))
    assert failed.collapsed and failed.failed and failed.value == -math.inf
    (adam,) = _spot(spots, "adam").intervals
    assert adam.upper_lr == pytest.approx(1e-4) and not adam.upper_open and adam.upper_resolution == pytest.approx(1.0)
    (adamw,) = _spot(spots, "adamw").intervals
    assert adamw.upper_lr == pytest.approx(1e-4) and adamw.upper_open and adamw.upper_resolution is None


def test_a_diverged_lr_bounds_the_interval_at_its_neighbour(tmp_path):
    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-5, [0.60, 0.60]),
            trial("b", "adam", 1e-4, rows=[row(1, 0.60), row(2, 0.0, diverged=1)], status="diverged"),
            trial("c", "adam", 1e-3, [0.60, 0.60]),
        ],
        epochs=2,
    )
    spots = near_best(load_results(folder), epoch=2)
    low, high = _spot(spots, "adam").intervals
    assert (low.lower_lr, low.upper_lr) == pytest.approx((1e-5, 1e-5))
    assert (high.lower_lr, high.upper_lr) == pytest.approx((1e-3, 1e-3))
    assert low.upper_resolution == pytest.approx(1.0) and high.lower_resolution == pytest.approx(1.0)
    diverged = next(c for c in spots.configs if c.lr == pytest.approx(1e-4))
    assert diverged.diverged and diverged.value == -math.inf


def test_nan_metrics_are_skipped_and_losses_are_minimised(tmp_path):
    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-4, rows=[row(1, float("nan")), row(2, 0.55)]),
            trial("b", "adam", 1e-3, rows=[row(1, float("nan"))], status="errored"),
            trial("c", "adam", 1e-2, [0.40, 0.41]),
        ],
        epochs=2,
    )
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
    folder = write_results(
        tmp_path / "r",
        [
            trial("a1", "adam", 1e-5, [0.31, 0.31]),
            trial("a2", "adam", 1e-4, [0.50, 0.60]),
            trial("a3", "adam", 1e-3, [0.30, 0.30]),
            trial("g1", "adagrad", 1e-3, [0.31, 0.31]),
            trial("g2", "adagrad", 1e-2, [0.36, 0.40]),
            trial("g3", "adagrad", 1e-1, [0.30, 0.30]),
        ],
        epochs=2,
    )
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


# ------------------------------------------------------------------------------------------------
# One score (trainable/score.py): epoch ends only, constant-prediction evaluations left out


def test_a_mid_epoch_spike_then_collapse_does_not_qualify(tmp_path):
    """The quickstart's 3.2e-4 edge: one mid-epoch evaluation above the level, then at the floor with
    constant predictions and a collapsed representation until the budget. The best over every
    evaluation (0.423) would qualify; the score reads epoch ends only, and those are all constant."""
    collapsed = dict(entropy=0.0, val_embed_rank=1.0)
    spike = [
        row(1, FLOOR, **collapsed),
        row(1.3333, 0.423, entropy=0.5, val_embed_rank=5.0),
        row(1.6667, FLOOR, **collapsed),
        row(2, FLOOR, **collapsed),
        row(2.3333, FLOOR, **collapsed),
        row(2.6667, FLOOR, **collapsed),
        row(3, FLOOR, **collapsed),
    ]
    folder = write_results(
        tmp_path / "r",
        [
            trial("good", "adam", 1e-4, [0.40, 0.45, 0.48]),
            trial("spike", "adam", 3.2e-4, rows=spike),
            trial("low", "adam", 1e-5, [0.30, 0.30, 0.30]),
        ],
        epochs=3,
    )
    spots = find_sweet_spots(load_results(folder))
    score = spots.comparison.scores["spike"]
    assert score.outcome == "failed" and "constant predictions at every epoch end" in score.reason
    (spike_config,) = [c for c in spots.configs if c.lr == pytest.approx(3.2e-4)]
    assert not spots.qualifies(spike_config.value)
    (interval,) = _spot(spots, "adam").intervals
    assert interval.upper_lr == pytest.approx(1e-4) and interval.upper_bracket == pytest.approx((1e-4, 3.2e-4))


def _without_mid_epoch_rows(table):
    from sweetspot.trainable.score import is_epoch_end

    return {**table, "trials": [{**t, "history": [r for r in t["history"] if is_epoch_end(r)]} for t in table["trials"]]}


def _verdicts(spots):
    return (
        [(c.optimizer, c.lr, c.weight_decay, c.value) for c in spots.configs],
        [(s.optimizer, s.verdict, s.intervals, s.well) for s in spots.optimizers],
    )


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "bench" / "tables").glob("*.json")))
def test_every_committed_table_gives_the_same_sweet_spots_without_its_mid_epoch_rows(name):
    """How often a run was evaluated (train.eval_every_steps) never changes a verdict."""
    table = json.loads((REPO / "bench" / "tables" / f"{name}.json").read_text())
    assert any(not float(r["epoch"]).is_integer() for t in table["trials"] for r in t["history"])  # it has mid-epoch rows
    full = find_sweet_spots(results_from_table(table, source=name))
    ends = find_sweet_spots(results_from_table(_without_mid_epoch_rows(table), source=name))
    assert _verdicts(full) == _verdicts(ends)
