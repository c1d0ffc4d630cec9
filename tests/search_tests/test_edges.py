"""The region search (search/edges.py), driven as Tune drives a searcher: suggest, report, complete.

No Ray cluster: `FakeTune` plays Tune's part (up to `concurrency` trials at once, the oldest running
one finishing first, a stopper cutting a trial's reports), on a synthetic objective or replaying a
committed ground-truth table.
"""

from __future__ import annotations

import json
import math
import statistics

import pytest
from ray.tune.search import Searcher

from sweetspot import layout
from sweetspot.analysis.recovery import score
from sweetspot.analysis.results import results_from_table
from sweetspot.analysis.sweetspot import DEFAULT_DELTA, find_sweet_spots
from sweetspot.search import edges as edges_module
from sweetspot.search.edges import EdgeSearch
from sweetspot.search.stoppers import CollapseStopper
from sweetspot.trainable import keys
from sweetspot.trainable import score as score_module
from sweetspot.trainable.score import is_epoch_end
from tests.conftest import REPO

MAJORITY = 0.39  # majority_p1 of the synthetic objective: F = 0.40, the level L = 1.02 F = 0.408
LEVEL = 1.02 * (MAJORITY + 0.01)


class FakeTune:
    """Tune's side of the searcher API. `evaluate(config)` gives a trial's reported rows; `stopper`
    (a Tune stopper) cuts them after the row it stops at. Each suggested config gets "_epochs", the
    epochs its trial ran, and "_rows", the rows it reported."""

    def __init__(self, search: EdgeSearch, evaluate, *, concurrency: int = 1, stopper=None):
        self.search, self.evaluate, self.concurrency, self.stopper = search, evaluate, concurrency, stopper
        self.running: list[tuple[str, dict]] = []
        self.configs: list[dict] = []
        self.finished = False

    def suggest(self) -> None:
        while not self.finished and len(self.running) < self.concurrency:
            trial_id = f"t{len(self.configs)}"
            config = self.search.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                self.finished = config == Searcher.FINISHED
                return
            self.running.append((trial_id, config))
            self.configs.append(config)

    def complete_oldest(self) -> None:
        trial_id, config = self.running.pop(0)
        rows = []
        for row in self.evaluate(config):
            rows.append(row)
            self.search.on_trial_result(trial_id, row)
            if self.stopper is not None and self.stopper(trial_id, row):
                break
        config["_epochs"], config["_rows"] = (rows[-1][keys.EPOCH] if rows else 0), rows
        self.search.on_trial_complete(trial_id, rows[-1] if rows else None)

    def run(self, limit: int = 500) -> list[dict]:
        """Until the searcher is done and no trial runs; returns the suggested configs in order."""
        while True:
            self.suggest()
            if not self.running:
                assert self.finished, "suggest() waits with no trial running"
                return self.configs
            assert len(self.configs) < limit
            self.complete_oldest()


def plateau(low: float, high: float, *, top: float = 0.6, slope: float = 0.5):
    """val_p1 over x = log10 lr: `top` on [low, high], falling `slope` per decade outside, never below
    the majority label's P@1 (what a collapsed run predicts)."""

    def value(x: float) -> float:
        return max(MAJORITY, top - slope * max(0.0, low - x, x - high))

    return value


def crossings(value, lo: float = -8.0, hi: float = 1.0) -> tuple[float, float]:
    """The outermost x where `value` reaches LEVEL, to 1e-3 decade."""
    inside = [x for x in (lo + k * 1e-3 for k in range(int((hi - lo) / 1e-3) + 1)) if value(x) >= LEVEL]
    return inside[0], inside[-1]


def synthetic(curves: dict, *, epochs: int = 3, seed_noise=None):
    """`evaluate` for FakeTune: curves[(optimizer, weight_decay)] or curves[optimizer] is val_p1 at the
    budget over x = log10 lr, reached linearly from the floor; `seed_noise(config)` is added to it.
    A run at the floor reports `collapsed` from its first epoch."""

    def evaluate(config: dict) -> list[dict]:
        name = config["optimizer"]
        curve = curves.get((name, config["weight_decay"])) or curves[name]
        final = curve(math.log10(config["lr"])) + (seed_noise(config) if seed_noise else 0.0)
        return [
            {
                keys.EPOCH: e,
                keys.VAL_P1: MAJORITY + (final - MAJORITY) * e / epochs,
                keys.MAJORITY_P1: MAJORITY,
                keys.COLLAPSED: int(final <= MAJORITY),
            }
            for e in range(1, epochs + 1)
        ]

    return evaluate


SYNTHETIC = {"train": {"epochs": 3, "collapse_p1_margin": 0.01}, "search": {"metric": keys.VAL_P1, "mode": "max"}}


def analyse(configs: list[dict], *, config: dict = SYNTHETIC, collapse_patience: int | None = None):
    """The analysis's sweet spots (`find_sweet_spots`) of the trials FakeTune ran, with the statuses
    their run records would get."""
    epochs = config["train"]["epochs"]
    trials = [
        {
            "trial_id": f"t{i}",
            "config": {k: c[k] for k in ("optimizer", "lr", "weight_decay", "seed")},
            "history": c["_rows"],
            "status": layout.trial_record(
                trial_id=f"t{i}",
                tune_status="TERMINATED",
                config={},
                rows=c["_rows"],
                metric=keys.VAL_P1,
                mode="max",
                max_epochs=epochs,
                collapse_patience=collapse_patience,
            )["status"],
        }
        for i, c in enumerate(configs)
    ]
    return find_sweet_spots(results_from_table({"config": config, "trials": trials}))


def edges(intervals) -> tuple[float, float]:
    """log10 of the outermost edges of the analysis's intervals."""
    return math.log10(intervals[0].lower_lr), math.log10(intervals[-1].upper_lr)


def spot(answer, optimizer: str):
    return next(s for s in answer.optimizers if s.optimizer == optimizer)


def flat(x: float) -> float:
    return MAJORITY  # never leaves the floor


# ------------------------------------------------------------------------------------------------
# Synthetic objectives


def test_finds_the_edges_of_a_trained_region_and_drops_a_collapsed_optimizer_within_its_budget():
    curve = plateau(-4, -3)  # adam trains on [1e-4, 1e-3]; adagrad never leaves the floor
    search = EdgeSearch(optimizers=["adam", "adagrad"], epochs=3, max_trials=12)
    configs = FakeTune(search, synthetic({"adam": curve, "adagrad": flat})).run()
    adam, adagrad = search.state
    (true_low, true_high), (low, high) = crossings(curve), edges(spot(analyse(configs), "adam").intervals)
    assert adam.phase == "found" and abs(low - true_low) <= 0.25 and abs(high - true_high) <= 0.25
    assert adagrad.phase == "dropped" and search.dropped == (("adagrad", 0.0),)
    assert sum(c["optimizer"] == "adagrad" for c in configs) == 4  # its probes, nothing more
    assert len(configs) < 12 and not adam.unresolved  # resolved before the budget ran out
    assert search.suggest("more") == Searcher.FINISHED


def test_several_suggestions_before_any_result_are_distinct_and_then_wait():
    search = EdgeSearch(optimizers=["adam", "adagrad", "adadelta"], epochs=3, weight_decays=(0.0, 0.01))
    configs = [search.suggest(f"t{i}") for i in range(30)]
    probes = [c for c in configs if isinstance(c, dict)]
    assert len(probes) == 3 * 2 * 4 and configs[len(probes) :] == [None] * (30 - len(probes))  # waits, not FINISHED
    assert len({(c["optimizer"], c["weight_decay"], c["lr"], c["seed"]) for c in probes}) == len(probes)


def test_concurrent_trials_never_sample_the_same_point_twice():
    curves = {"adam": plateau(-4, -3, top=0.43), "adagrad": plateau(-3, -1.5), "adadelta": flat}
    noise = lambda c: -0.01 * (c["seed"] % 2)  # noqa: E731  second seeds score lower
    search = EdgeSearch(optimizers=list(curves), epochs=3)
    configs = FakeTune(search, synthetic(curves, seed_noise=noise), concurrency=6).run()
    sampled = [(c["optimizer"], c["lr"], c["seed"]) for c in configs]
    assert len(set(sampled)) == len(sampled)
    assert any(c["seed"] == 1 for c in configs)  # the extra seeds are among them
    assert [s.phase for s in search.state] == ["found", "found", "dropped"]


def test_save_and_restore_continue_exactly_as_an_uninterrupted_search(tmp_path):
    curves = {"adam": plateau(-4, -3, top=0.43), "adagrad": plateau(-3, -1.5), "adadelta": flat}
    evaluate = synthetic(curves, seed_noise=lambda c: -0.03 * (c["seed"] % 2))
    settings = dict(optimizers=list(curves), epochs=3, weight_decays=(0.0, 0.1))
    uninterrupted = EdgeSearch(**settings)
    whole = FakeTune(uninterrupted, evaluate, concurrency=3).run()

    tune = FakeTune(EdgeSearch(**settings), evaluate, concurrency=3)
    while len(tune.configs) < 20:  # stop mid-search, with trials running
        tune.suggest()
        tune.complete_oldest()
    tune.suggest()
    assert tune.running
    tune.search.save_to_dir(str(tmp_path))  # what Tune does at each experiment checkpoint
    tune.search = EdgeSearch(**settings)  # a new process: the searcher is built again, then restored
    tune.search.restore_from_dir(str(tmp_path))
    resumed = tune.run()
    strip = lambda cs: [{k: v for k, v in c.items() if not k.startswith("_")} for c in cs]  # noqa: E731
    assert strip(resumed) == strip(whole)
    assert tune.search.summary() == uninterrupted.summary()


def test_a_search_restored_with_other_settings_is_refused(tmp_path):
    search = EdgeSearch(optimizers=["adam"], epochs=3)
    search.suggest("t0")
    search.save(str(tmp_path / "s.pkl"))
    with pytest.raises(ValueError, match="other lines"):
        EdgeSearch(optimizers=["adagrad"], epochs=3).restore(str(tmp_path / "s.pkl"))


def test_two_weight_decays_give_the_edges_per_decay():
    curves = {("adamw", 0.0): plateau(-4, -3), ("adamw", 0.1): plateau(-5, -4.5), "adamw": flat}
    search = EdgeSearch(optimizers=["adamw"], epochs=3, weight_decays=(0.0, 0.1), lr_factor=(1e-4, 10.0))
    configs = FakeTune(search, synthetic(curves)).run()
    assert [line.phase for line in search.state] == ["found", "found"]
    (region,) = analyse(configs).regions  # the analysis's 2-D answer: one interval list per decay
    assert [s.weight_decay for s in region.slices] == [0.0, 0.1]
    for piece in region.slices:
        (true_low, true_high), (low, high) = crossings(curves[("adamw", piece.weight_decay)]), edges(piece.intervals)
        assert abs(low - true_low) <= 0.25 and abs(high - true_high) <= 0.25


def test_an_edge_within_the_noise_gets_a_second_seed_which_can_move_it():
    # A tent peaking at 0.5 (1e-3.5): its qualifying edge points 1e-4 and 1e-3 score 0.44, within
    # 2σ = 0.042 of L = 0.408 (σ pools the prior 0.03 with the peak's two equal seeds, the peak
    # being the one qualifying probe). At 1e-4 the second seed scores 0.39: mean − std = 0.38 does
    # not qualify.
    tent = lambda x: max(MAJORITY, 0.5 - 0.12 * abs(x + 3.5))  # noqa: E731
    noise = lambda c: -0.05 if c["seed"] == 1 and math.isclose(c["lr"], 1e-4) else 0.0  # noqa: E731
    search = EdgeSearch(optimizers=["adam"], epochs=3, noise=0.03)
    configs = FakeTune(search, synthetic({"adam": tent}, seed_noise=noise)).run()
    assert sorted(c["lr"] for c in configs if c["seed"] == 1) == pytest.approx([1e-4, 10**-3.5, 1e-3])
    (line,) = search.state
    at = {p.lr: p for p in line.points}
    assert not at[1e-4].qualifies and at[1e-3].qualifies and at[1e-3].seeds == 2
    low, _ = edges(spot(analyse(configs), "adam").intervals)
    assert -4 < low < -3.5  # between 1e-4, which fails on two seeds, and the peak


def test_a_region_resting_on_one_trial_gets_a_second_seed_which_can_undo_it():
    # Only 1e-3.5 trains, far above the level (0.6 against L = 0.408, beyond 2σ); its second seed
    # stays at the floor: the region was one lucky seed, and the verdict is none.
    spike = lambda x: 0.6 if abs(x + 3.5) < 0.1 else MAJORITY  # noqa: E731
    lucky = lambda c: MAJORITY - 0.6 if c["seed"] == 1 else 0.0  # noqa: E731
    search = EdgeSearch(optimizers=["adam"], epochs=3)
    configs = FakeTune(search, synthetic({"adam": spike}, seed_noise=lucky)).run()
    assert [math.log10(c["lr"]) for c in configs if c["seed"] == 1] == pytest.approx([-3.5])
    (line,) = search.state
    assert not any(p.qualifies for p in line.points) and line.phase == "dropped"  # no point beats the floor
    assert not spot(analyse(configs), "adam").intervals


def test_one_seed_per_point_when_seeds_is_one():
    tent = lambda x: max(MAJORITY, 0.5 - 0.12 * abs(x + 3.5))  # noqa: E731
    configs = FakeTune(EdgeSearch(optimizers=["adam"], epochs=3, seeds=1), synthetic({"adam": tent})).run()
    assert {c["seed"] for c in configs} == {0}


def _report(search: EdgeSearch, trial_id: str, rows: list[dict]) -> None:
    for row in rows:
        search.on_trial_result(trial_id, {keys.MAJORITY_P1: MAJORITY, **row})
    search.on_trial_complete(trial_id, {keys.MAJORITY_P1: MAJORITY, **rows[-1]})


def test_a_collapse_stopped_or_diverged_trial_fails_and_a_truncated_one_is_unknown_and_not_resampled():
    search = EdgeSearch(optimizers=["adam"], epochs=3, collapse_patience=2, seeds=1)  # seeds: the next test
    xs = [math.log10(search.suggest(f"t{i}")["lr"]) for i in range(4)]
    assert xs == pytest.approx([-5.5, -4.5, -3.5, -2.5])
    _report(search, "t0", [{"epoch": 1, "val_p1": 0.9}])  # stopped by ASHA after epoch 1: unknown
    _report(search, "t1", [{"epoch": e, "val_p1": 0.39, "collapsed": 1} for e in (1, 2)])  # collapse stopper
    _report(search, "t2", [{"epoch": e, "val_p1": 0.5} for e in (1, 2, 3)])  # reached the budget
    _report(search, "t3", [{"epoch": 1, "val_p1": 0.5, "diverged": 1}])
    (line,) = search.state
    assert [(p.outcome, p.qualifies) for p in line.points] == [
        ("unknown", False),
        ("failed", False),
        ("scored", True),
        ("failed", False),
    ]
    assert math.isnan(line.points[0].value)  # 0.9 at epoch 1 is not a score at the budget
    nxt = [math.log10(search.suggest(f"t{i}")["lr"]) for i in (4, 5)]
    assert nxt == pytest.approx([-4.0, -3.0])  # the brackets failed | qualifying
    _report(search, "t4", [{"epoch": 1, "val_p1": 0.5}])  # the lower midpoint comes back truncated too
    _report(search, "t5", [{"epoch": e, "val_p1": 0.39} for e in (1, 2, 3)])
    assert search.suggest("t6") == Searcher.FINISHED  # the midpoint is not tried again
    (line,) = search.state
    assert line.phase == "found" and len(line.unresolved) == 1
    assert line.unresolved[0] == pytest.approx((10**-4.5, 10**-3.5))


def test_a_trial_the_early_collapse_rule_stopped_fails():
    """The early rule reads more than val_p1 (entropy, embedding rank, training loss against the
    prior BCE): the searcher keeps those signals, so a run it stopped is a failed point, as in the
    run records; read as unknown, a bracket next to it would never close (the real search on
    GoEmotions left Adagrad's upper edge a decade wide so)."""
    rule = {"budget_epochs": 3, "entropy_fraction": 0.2, "p1_margin": 0.01}
    search = EdgeSearch(optimizers=["adam"], epochs=3, early_collapse=rule)
    search.suggest("t0")
    on_prior = {
        keys.VAL_PRED_ENTROPY: 0.0,
        keys.VAL_TRUE_ENTROPY: 0.8,
        keys.VAL_P1: MAJORITY,
        keys.MAJORITY_P1: MAJORITY,
        keys.COLLAPSED: 1,
        keys.VAL_EMBED_RANK: 1.0,
        keys.TRAIN_LOSS_RECENT: 0.151,
        keys.PRIOR_BCE: 0.150,
    }
    rows = [{**on_prior, keys.EPOCH: e} for e in (1 / 3, 2 / 3, 1)]
    assert (
        layout.trial_record(
            trial_id="t0",
            tune_status="TERMINATED",
            config={},
            rows=rows,
            metric=keys.VAL_P1,
            mode="max",
            max_epochs=3,
            early_collapse=rule,
        )["status"]
        == "collapsed"
    )
    _report(search, "t0", rows)
    (line,) = search.state
    assert [p.outcome for p in line.points] == ["failed"]


def _probe_and_bisect(search: EdgeSearch, values: dict):
    """Rounds of: suggest until the searcher waits, then report every trial (val_p1 rising linearly
    to `values[x]` at the budget, x = log10 lr; `values[(x, seed)]` for a seed other than 0); ends at
    the first suggestion not in `values`. Returns (the xs reported, that trial's id, its config)."""

    def key(c: dict):
        x = round(math.log10(c["lr"]), 6)
        return x if c["seed"] == 0 else (x, c["seed"])

    done = []
    while True:
        batch = []
        while True:
            trial_id = f"t{len(search._trials)}"
            config = search.suggest(trial_id)
            if not isinstance(config, dict) or key(config) not in values:
                break
            batch.append((trial_id, config))
        for tid, c in batch:
            value = values[key(c)]
            _report(search, tid, synthetic({"adam": lambda _x, v=value: v})(c))
            done.append(key(c))
        if isinstance(config, dict) or not batch:
            return done, trial_id, config


def test_a_point_whose_extra_seed_runs_keeps_its_verdict_and_no_lr_inside_a_resolved_region_is_proposed():
    # Probes 1e-5 and 1e-3 over [1e-6, 1e-2]; the region [1e-4, 10^-2.5] is found by bisection, its
    # edges resolve at 0.5 decade, and each qualifying end (0.43, within 2σ of L) gets a second seed.
    # While one runs, that point still qualifies: nothing inside the region is worth a trial.
    search = EdgeSearch(optimizers=["adam"], epochs=3, lr=(1e-6, 1e-2), probes=2)
    values = {-5.0: MAJORITY, -3.0: 0.6, (-3.0, 1): 0.6, -4.0: 0.43, -2.0: MAJORITY, -4.5: MAJORITY, -2.5: 0.43}
    done, t_a, c_a = _probe_and_bisect(search, values)
    assert sorted(done, key=str) == sorted(values, key=str) and c_a["seed"] == 1
    c_b = search.suggest("t_b")
    assert c_b["seed"] == 1 and sorted([math.log10(c_a["lr"]), math.log10(c_b["lr"])]) == pytest.approx([-4.0, -2.5])
    _report(search, t_a, synthetic({"adam": lambda x: 0.43})(c_a))
    assert search.suggest("t_c") is None  # the other extra seed runs; nothing inside the region to sample
    (line,) = search.state
    assert [p.qualifies for p in line.points] == [False, False, True, True, True, False]
    _report(search, "t_b", synthetic({"adam": lambda x: 0.43})(c_b))
    assert search.suggest("t_d") == Searcher.FINISHED


def test_a_point_is_lone_only_when_no_other_point_of_its_line_is_still_undecided():
    # Probes 1e-5 and 1e-3 over [1e-6, 1e-2]: nothing qualifies, 1e-3 beats the floor, so 1e-4 and
    # 10^-3.5 are bisected at once. 1e-4 comes back far above the level while 10^-3.5 still runs:
    # it may qualify too, so 1e-4 is not yet a region resting on one point; its brackets go first.
    search = EdgeSearch(optimizers=["adam"], epochs=3, lr=(1e-6, 1e-2), probes=2)
    done, _, first = _probe_and_bisect(search, {-5.0: MAJORITY, -3.0: 0.405})
    second = search.suggest("t3")
    assert [first["seed"], second["seed"]] == [0, 0]
    assert [math.log10(first["lr"]), math.log10(second["lr"])] == pytest.approx([-4.0, -3.5])
    _report(search, "t2", synthetic({"adam": lambda x: 0.6})(first))
    after = search.suggest("t4")
    assert after["seed"] == 0 and math.log10(after["lr"]) == pytest.approx(-4.5)


def test_a_probes_extra_seed_does_not_hold_its_line():
    # Only the probe 1e-3.5 trains: it gets its second seed first, and while that runs the brackets
    # on either side of it are bisected.
    search = EdgeSearch(optimizers=["adam"], epochs=3)
    done, t4, c4 = _probe_and_bisect(search, {-5.5: MAJORITY, -4.5: MAJORITY, -3.5: 0.6, -2.5: MAJORITY})
    assert math.log10(c4["lr"]) == pytest.approx(-3.5) and c4["seed"] == 1
    c5 = search.suggest("t5")
    assert isinstance(c5, dict) and math.log10(c5["lr"]) == pytest.approx(-4.0)
    assert search.state[0].phase == "refining"


def test_a_trial_is_scored_as_trainable_score_scores_it():
    """Best val_p1 over epoch ends <= the budget, constant-prediction evaluations left out; a trial
    that reached the budget counts whatever ended it after (the analysis's reading)."""
    search = EdgeSearch(optimizers=["adam"], epochs=2, seeds=1)
    for i in range(4):
        search.suggest(f"t{i}")
    entropy = {keys.VAL_TRUE_ENTROPY: 0.8, keys.VAL_PRED_ENTROPY: 0.5}
    spike = [{keys.EPOCH: 1, keys.VAL_P1: 0.40}, {keys.EPOCH: 1.5, keys.VAL_P1: 0.60}, {keys.EPOCH: 2, keys.VAL_P1: 0.40}]
    _report(search, "t0", [{**entropy, **r} for r in spike])  # a mid-epoch spike is no score
    constant = [{keys.EPOCH: e, keys.VAL_P1: 0.5, keys.VAL_TRUE_ENTROPY: 0.8, keys.VAL_PRED_ENTROPY: 0.0} for e in (1, 2)]
    _report(search, "t1", constant)  # one label predicted for every document: never training
    for row in [{**entropy, keys.EPOCH: e, keys.VAL_P1: 0.5, keys.MAJORITY_P1: MAJORITY} for e in (1, 2)]:
        search.on_trial_result("t2", row)
    search.on_trial_complete("t2", error=True)  # errored after its last epoch: scored at the budget
    (line,) = search.state
    assert [(p.outcome, p.qualifies) for p in line.points[:3]] == [("scored", False), ("scored", False), ("scored", True)]
    assert line.points[0].value == pytest.approx(0.40) and math.isnan(line.points[1].value)


def test_a_probe_above_the_floor_with_nearly_constant_predictions_is_a_hint_bisected_towards():
    """A region narrower than the probes' spacing: no probe scores (its best evaluations predict a few
    labels for nearly every document, which never counts as training), but one beat the floor. The line
    is bisected towards it, to half the resolution, rather than dropped."""
    search = EdgeSearch(optimizers=["adam"], epochs=2, seeds=1)  # probes at 10^-5.5 .. 10^-2.5, 1 decade apart
    probes = [search.suggest(f"t{i}") for i in range(4)]
    few_labels = {keys.VAL_TRUE_ENTROPY: 0.8, keys.VAL_PRED_ENTROPY: 0.1}  # 0.1 <= 0.2 x 0.8: nearly constant
    for i, p1 in enumerate([MAJORITY, 0.50, MAJORITY, MAJORITY]):
        _report(search, f"t{i}", [{**few_labels, keys.EPOCH: e, keys.VAL_P1: p1} for e in (1, 2)])
    (line,) = search.state
    assert all(math.isnan(p.value) or p.value <= LEVEL for p in line.points)  # nothing scores: no spot so far
    assert line.phase == "refining" and line.points[1].hint == pytest.approx(0.50)
    hint = math.log10(probes[1]["lr"])
    asked = sorted(math.log10(search.suggest(f"t{i}")["lr"]) for i in (4, 5))
    assert asked == pytest.approx([hint - 0.5, hint + 0.5])  # both neighbouring brackets, towards the hint


def test_adamw_at_weight_decay_0_is_not_run_and_answers_as_adam_while_at_another_decay_it_runs():
    curve = plateau(-4, -3)
    search = EdgeSearch(optimizers=["adam", "adamw"], epochs=3, weight_decays=[0.0, 0.01])
    configs = FakeTune(search, synthetic({"adam": curve, "adamw": curve}), concurrency=2).run()
    assert {c["weight_decay"] for c in configs if c["optimizer"] == "adamw"} == {0.01}
    lines = {(s.optimizer, s.weight_decay): s for s in search.state}
    twin, adam = lines[("adamw", 0.0)], lines[("adam", 0.0)]
    assert twin.same_as == "adam" and twin.phase == adam.phase == "found" and twin.points == adam.points
    assert lines[("adamw", 0.01)].same_as is None and "as adam (identical updates; not run)" in "\n".join(search.summary())
    # The analysis answers for the line that was not run with its twin's trials, and says so.
    config = {
        **SYNTHETIC,
        "search": {**SYNTHETIC["search"], "space": {"optimizer": ["adam", "adamw"], "weight_decay": [0.0, 0.01]}},
    }
    answer = analyse(configs, config=config)
    assert spot(answer, "adamw").same_as == "adam" and spot(answer, "adam").same_as is None
    decays = {d.weight_decay for r in answer.regions if r.optimizer == "adamw" for d in r.slices}
    assert decays == {0.0, 0.01}  # wd 0 from Adam's trials, wd 0.01 from AdamW's own
    assert edges(spot(answer, "adamw").intervals) == pytest.approx(edges(spot(answer, "adam").intervals), abs=0.3)


def test_a_line_with_a_relative_probes_first_at_the_relatives_edges():
    # AMSGrad's region is Adam's: it waits for Adam's line, then samples the ends of Adam's edges.
    curve = plateau(-4, -3)
    search = EdgeSearch(optimizers=["adam", "amsgrad"], epochs=3)
    configs = FakeTune(search, synthetic({"adam": curve, "amsgrad": curve}), concurrency=2).run()
    adam, amsgrad = search.state
    assert adam.phase == amsgrad.phase == "found"
    first_amsgrad = next(k for k, c in enumerate(configs) if c["optimizer"] == "amsgrad")
    assert all(c["optimizer"] == "adam" for c in configs[:first_amsgrad]) and first_amsgrad >= 4
    assert len(configs) - first_amsgrad < first_amsgrad  # fewer trials than Adam's
    answer = analyse(configs)
    assert edges(spot(answer, "amsgrad").intervals) == pytest.approx(edges(spot(answer, "adam").intervals))
    alone = FakeTune(
        EdgeSearch(optimizers=["adam", "amsgrad"], epochs=3, relatives=False),
        synthetic({"adam": curve, "amsgrad": curve}),
        concurrency=2,
    ).run()
    assert len(configs) < len(alone)


def test_a_line_whose_relatives_edges_are_not_its_own_probes_the_whole_range():
    search = EdgeSearch(optimizers=["adam", "amsgrad"], epochs=3)
    FakeTune(search, synthetic({"adam": plateau(-4, -3), "amsgrad": plateau(-6, -5.5)}), concurrency=2).run()
    adam, amsgrad = search.state
    assert amsgrad.phase == "found" and any(p.qualifies and p.lr < 1e-5 for p in amsgrad.points)


def test_max_trials_ends_the_search():
    search = EdgeSearch(optimizers=["adam", "adagrad"], epochs=3, max_trials=3)
    assert [isinstance(search.suggest(f"t{i}"), dict) for i in range(3)] == [True] * 3
    assert search.suggest("t3") == Searcher.FINISHED


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(metric="val_loss", mode="min"), "metric/mode must be val_p1/max"),
        (dict(optimizers=["adamx"]), "unknown optimizer 'adamx'"),
        (dict(probes=1), "probes: 1 < 2"),
        (dict(lr_factor=(10.0, 0.1)), r"lr_factor: need 0 < low < high"),
        (dict(resolution=0.0), "resolution: 0.0 decades"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_them(settings, message):
    with pytest.raises(ValueError, match=message):
        EdgeSearch(**{"optimizers": ["adam"], "epochs": 3, **settings})


def test_a_search_whose_trials_report_no_majority_floor_is_an_error():
    search = EdgeSearch(optimizers=["adam"], epochs=1)
    search.suggest("t0")
    with pytest.raises(ValueError, match="trial t0 reported no majority_p1"):
        search.on_trial_complete("t0", {"epoch": 1, "val_p1": 0.5})


# ------------------------------------------------------------------------------------------------
# Replaying a ground-truth table (bench/tables): a trial gets the table's rows for the grid lr
# nearest its lr in log10, and the table's seed (the point's seed index + `offset`) mod its seeds.


def load_table(name: str) -> dict:
    return json.loads((REPO / "bench" / "tables" / f"{name}.json").read_text())


def table_evaluate(table: dict, *, offset: int = 0, first_seed: int = 0):
    rows: dict[tuple, dict[int, list]] = {}
    for t in table["trials"]:
        c = t["config"]
        rows.setdefault((c["optimizer"], c["weight_decay"], c["lr"]), {})[c["seed"]] = t["history"]

    def evaluate(config: dict) -> list[dict]:
        here = [k for k in rows if k[:2] == (config["optimizer"], config["weight_decay"])]
        nearest = min(here, key=lambda k: (abs(math.log10(k[2]) - math.log10(config["lr"])), k[2]))
        seeds = sorted(rows[nearest])
        return rows[nearest][seeds[(config["seed"] - first_seed + offset) % len(seeds)]]

    return evaluate


def replay_table(table: dict, *, offset: int = 0, concurrency: int = 2, collapse_patience: int | None = None, **settings):
    """One replay of the region search against `table`: (the searcher, its `Recovery` against the
    table's own sweet spots, the answer's `SweetSpots` from the trials it ran)."""
    config = table["config"]
    space, epochs = config["search"]["space"], config["train"]["epochs"]
    search = EdgeSearch(
        optimizers=space["optimizer"],
        epochs=epochs,
        weight_decays=space["weight_decay"],
        lr_factor=(min(space["lr_factor"]), max(space["lr_factor"])),
        margin=config["train"]["collapse_p1_margin"],
        collapse_patience=collapse_patience,
        **settings,
    )
    stopper = CollapseStopper(collapse_patience) if collapse_patience else None
    configs = FakeTune(search, table_evaluate(table, offset=offset), concurrency=concurrency, stopper=stopper).run()
    for c in configs:
        c["_rows"] = as_scored(c["_rows"])
    answer = analyse(configs, config=config, collapse_patience=collapse_patience)
    truth = {**table, "trials": [{**t, "history": as_scored(t["history"])} for t in table["trials"]]}
    return search, score(answer, find_sweet_spots(results_from_table(truth))), answer, configs


def as_scored(rows: list[dict]) -> list[dict]:
    """The rows the score (trainable/score.py) reads: epoch ends, the metric of an evaluation that does
    not count (constant predictions) blanked, so that the analysis's best over rows is the score."""
    return [
        r if score_module.counts(r) else {**r, keys.VAL_P1: math.nan} for r in rows if is_epoch_end(r) or r.get(keys.DIVERGED)
    ]


def scored_qualifying(configs: list[dict], optimizer: str, *, floor: float, budget: int) -> list[float]:
    """The lrs of `optimizer` whose seeds (scored by trainable/score.py, mean − std) qualify; none
    with a failed seed (the run records' statuses)."""
    by_lr: dict[float, list] = {}
    for c in configs:
        if c["optimizer"] == optimizer:
            status = layout.trial_record(
                trial_id="t",
                tune_status="TERMINATED",
                config={},
                rows=c["_rows"],
                metric=keys.VAL_P1,
                mode="max",
                max_epochs=budget,
            )["status"]
            by_lr.setdefault(c["lr"], []).append(
                math.nan if status in ("diverged", "collapsed") else score_module.score(c["_rows"], budget=budget).value
            )
    out = []
    for lr, values in by_lr.items():
        if all(math.isfinite(v) for v in values) and score_module.qualifies(
            statistics.fmean(values) - (statistics.stdev(values) if len(values) > 1 else 0.0), floor=floor
        ):
            out.append(lr)
    return sorted(out)


@pytest.mark.parametrize("name", ["go_emotions", "reuters_all"])
def test_replayed_on_a_ground_truth_table_it_agrees_with_the_grid(name):
    table = load_table(name)
    for offset in (0, 1):  # which of the table's two seeds a point's first trial gets
        search, recovery, answer, configs = replay_table(table, offset=offset)
        assert recovery.agreement == 1.0, [(o.optimizer, o.truth, o.answer) for o in recovery.optimizers if not o.agree]
        errors = sorted(recovery.edge_errors)
        assert statistics.median(errors) <= 0.25 and errors[int(0.9 * (len(errors) - 1))] <= 0.5
        assert recovery.regret <= 0.01
        assert recovery.trial_epochs_fraction <= 0.5  # without an early collapse stop; see the report
        # the searcher qualifies the configurations that trainable/score.py qualifies among the trials it ran
        floor = table["trials"][0]["history"][0][keys.MAJORITY_P1] + table["config"]["train"]["collapse_p1_margin"]
        for line in search.state:
            ours = sorted(p.lr for p in line.points if p.qualifies)
            assert ours == pytest.approx(
                scored_qualifying(configs, line.same_as or line.optimizer, floor=floor, budget=table["config"]["train"]["epochs"])
            )


def test_the_searchers_default_delta_is_the_analysiss():
    from sweetspot.search.config import EdgesConfig
    from sweetspot.trainable.score import DEFAULT_DELTA as SCORE_DELTA

    assert edges_module.DEFAULT_DELTA == DEFAULT_DELTA == SCORE_DELTA == EdgesConfig().delta


# ------------------------------------------------------------------------------------------------
# Under a real Tune (a local Ray, a function trainable that reports the synthetic objective)

CURVES = {"adam": plateau(-4, -3), "adagrad": flat}


def _trainable(config: dict) -> None:
    from ray import tune

    for row in synthetic(CURVES)(config):
        tune.report(row)


@pytest.mark.slow
def test_runs_under_a_real_tuner_to_the_same_answer(tmp_path):
    import ray
    from ray import tune

    settings = dict(optimizers=list(CURVES), epochs=3)
    expected = EdgeSearch(**settings)
    FakeTune(expected, synthetic(CURVES), concurrency=2).run()
    search = EdgeSearch(**settings)
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        grid = tune.Tuner(
            _trainable,
            tune_config=tune.TuneConfig(
                search_alg=search, num_samples=100, max_concurrent_trials=2, metric=keys.VAL_P1, mode="max"
            ),
            run_config=tune.RunConfig(name="edges", storage_path=str(tmp_path), verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    assert not grid.errors and len(grid) == sum(p.seeds for s in expected.state for p in s.points)  # ended by FINISHED
    assert search.summary() == expected.summary()
    assert list(tmp_path.glob("edges/searcher-state-*.pkl"))  # Tune saved the searcher's state with the experiment
