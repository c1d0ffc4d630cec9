"""bench/replay.py (replay v2): the surrogate, the per-seed truth, shifted ranges, the seed rule and the
cost accounting, against the committed tuning tables."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def replay():
    spec = importlib.util.spec_from_file_location("replay", REPO / "bench" / "replay.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = module
    spec.loader.exec_module(module)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return module


@pytest.fixture(scope="module")
def go(replay):
    return replay.Table.load("go_emotions")


@pytest.fixture(scope="module")
def reuters(replay):
    return replay.Table.load("reuters_all")


def _run(replay, table, method, *, world, shift=0.0, replay_seed=0, extra=None):
    with tempfile.TemporaryDirectory() as work:
        config = table.experiment(method, storage=work, replay_seed=replay_seed, shift=shift, extra=extra)
        results, cost = replay.simulate(table, config, world, workdir=work)
    return config, results, cost


def test_the_surrogate_returns_the_tables_rows_at_table_lrs(go):
    for (optimizer, lr, seed), rows in go.rows.items():
        assert go.answer(optimizer, lr, seed) == rows
    # the table lr as a replay computes it (factor × default lr) is the same lr
    assert go.answer("adam", 0.1 * 1e-3, 0) == go.rows[("adam", 1e-4, 0)]


def test_between_table_lrs_the_surrogate_interpolates_each_epoch_row_in_log10_lr(go):
    lo, hi = go.rows[("adam", 1e-4, 1)], go.rows[("adam", 3.16227766017e-4, 1)]
    x = 10 ** (-4 + 0.25 * 0.5)  # a quarter of the way from 1e-4 to 10^-3.5
    rows = go.answer("adam", x, 1)
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in lo]  # the nearer run's epochs, mid-epoch rows included
    for a, b, r in zip(lo, hi, rows):
        assert r["val_p1"] == pytest.approx(a["val_p1"] + 0.25 * (b["val_p1"] - a["val_p1"]))
        assert r["val_top_label"] == a["val_top_label"]  # categorical: the nearer run's
    # outside the table's range: the end run
    assert go.answer("adam", 1e-9, 0) == go.rows[("adam", 1e-6, 0)]


def test_the_truth_lattice_holds_every_table_lr_and_is_at_most_a_twentieth_decade_fine(replay, go):
    lattice = go.lattice("adagrad")
    steps = [math.log10(b) - math.log10(a) for a, b in zip(lattice, lattice[1:])]
    assert max(steps) <= replay.LATTICE_STEP + 1e-9
    for lr in go.lrs["adagrad"]:
        assert min(abs(math.log10(lr) - math.log10(x)) for x in lattice) < 1e-9


def test_the_truth_scores_table_lrs_by_the_one_score(go):
    from sweetspot.trainable.score import score

    for world in go.seeds:
        values = {(c.optimizer, round(math.log10(c.lr), 6)): c.value for c in go.truth(world).configs}
        for (optimizer, lr, seed), rows in go.rows.items():
            if seed == world:
                expected = score(rows, budget=go.budget, entropy_fraction=go.entropy_fraction).value
                got = values[(optimizer, round(math.log10(lr), 6))]
                # no epoch end counts: the analysis's rule fails the run (-inf) or leaves it unscored (NaN)
                assert got == expected or (math.isnan(expected) and (math.isnan(got) or got == -math.inf))


def test_the_truth_does_not_change_when_mid_epoch_rows_are_removed(replay, reuters):
    from sweetspot.trainable.score import is_epoch_end

    doc = json.loads(json.dumps(reuters.doc))
    for t in doc["trials"]:
        t["history"] = [r for r in t["history"] if is_epoch_end(r)]
    assert len(doc["trials"][0]["history"]) == 3  # it had 9 rows: 3 evaluations an epoch
    cut = replay.Table(doc, name="reuters_all")
    for world in reuters.seeds:
        a, b = reuters.truth(world), cut.truth(world)
        assert replay._truth_summary(a) == replay._truth_summary(b)
        assert [(c.lr, c.value) for c in a.configs if math.isfinite(c.value)] == [
            (c.lr, c.value) for c in b.configs if math.isfinite(c.value)
        ]


def test_the_truth_scores_perfectly_against_itself_and_the_twin_line_is_counted_once(replay, go):
    assert go.twins == ("adamw",)  # AdamW at weight decay 0: Adam's rows
    r = replay.score_against(go, go.truth(0), 0, replay.Cost(0.0, 0))
    assert r.found == (True, True, True, True)  # adadelta, adagrad, adam, amsgrad: adamw left out
    assert set(r.edge_errors) == {0.0} and r.regret == 0.0


def test_a_line_whose_epoch_ends_all_predict_one_label_bounds_the_region(replay, go):
    """A run scored NaN (every epoch end has constant predictions) is a point that does not qualify:
    the region stops at its qualifying neighbour instead of bridging to the next scored lr."""
    from sweetspot.analysis.results import TrialResult

    def run(lr, p1, constant):
        rows = [
            {"epoch": e, "val_p1": p1, "val_pred_entropy": 0.0 if constant else 0.5, "val_true_entropy": 0.8} for e in (1, 2, 3)
        ]
        return TrialResult(trial_id=str(lr), status="terminated", config={"optimizer": "adam", "lr": lr}, history=rows)

    trials = [run(1e-5, 0.30, False), run(1e-4, 0.60, False), run(1e-3, 0.45, True), run(1e-2, 0.60, False)]
    (spot,) = replay.spots(trials, budget=3, floor=0.4, entropy_fraction=0.2).optimizers
    assert [(round(math.log10(i.lower_lr), 3), round(math.log10(i.upper_lr), 3)) for i in spot.intervals] == [
        (-4.64, -4.0),
        (-2.0, -2.0),
    ]  # level 1.02 × 0.4 = 0.408, 36 % of the way up


def test_each_replay_shifts_every_methods_range_by_its_own_offset(replay, go):
    shifts = [replay.shift_of(r) for r in range(30)]
    assert all(-replay.MAX_SHIFT <= s <= replay.MAX_SHIFT for s in shifts) and len(set(shifts)) == 30
    assert min(shifts) < -0.3 and max(shifts) > 0.3
    grid = go.experiment("grid", storage="/tmp/x", replay_seed=0, shift=0.3)
    assert list(grid.search.space.lr_factor) == pytest.approx([f * 10**0.3 for f in replay.STUDY_FACTORS])
    tpe = go.experiment("tpe-asha", storage="/tmp/x", replay_seed=0, shift=-0.15)
    assert (tpe.search.space.lr_factor.low, tpe.search.space.lr_factor.high) == pytest.approx((10**-3.15, 10**0.85))
    _, results, _ = _run(replay, go, "edges", world=0, shift=0.3)
    from sweetspot.trainable.optimizers import default_lr

    for t in results.trials:
        x = math.log10(t.config["lr"] / default_lr(t.config["optimizer"]))
        assert -2.7 - 1e-9 <= x <= 1.3 + 1e-9


def test_one_seed_rule_a_trial_reads_its_worlds_seed_and_an_extra_seed_the_other(replay, go):
    assert [replay.world_of(go, r) for r in range(4)] == [0, 1, 0, 1]
    assert go.table_seed(1, 0) == 1 and go.table_seed(1, 1) == 0 and go.table_seed(0, 1) == 1
    config = {"optimizer": "adam", "lr": 1e-4}
    assert go.lookup(1, config) == replay.epoch_ends(go.rows[("adam", 1e-4, 1)])
    assert go.lookup(1, {**config, "seed": 1}) == replay.epoch_ends(go.rows[("adam", 1e-4, 0)])


def test_the_noise_floor_is_what_the_two_seeds_truths_say(replay, go, reuters):
    floor = replay.noise_floor(reuters)["seed 0 vs seed 1"]
    truths = [{o: v["verdict"] for o, v in replay._truth_summary(reuters.truth(w)).items()} for w in (0, 1)]
    found_in_1 = [o for o, v in truths[1].items() if v == "found" and o not in reuters.twins]
    assert floor["agreement_found"] == sum(truths[0][o] == "found" for o in found_in_1) / len(found_in_1)
    assert floor["agreement_found"] < 1.0  # Reuters: a region on one seed only
    assert replay.noise_floor(go)["seed 0 vs seed 1"]["agreement_found"] == 1.0


def test_cost_counts_trial_epochs_and_evaluation_passes(replay, go):
    _, results, cost = _run(replay, go, "grid", world=0)
    assert cost.trial_epochs == 75 and cost.eval_passes == 75  # 25 runs × 3 epochs, one evaluation an epoch
    r = replay.score_replay(go, 0, results, cost)
    assert r.eval_epochs == pytest.approx(75 * (300 + 300) / 1200 / 3)  # validation + test documents, a forward share
    assert replay.summarise([r], grid=go.grid_trial_epochs)["cost_pct"] == pytest.approx(100 * (75 + 12.5) / 270)
    _, results, cost = _run(replay, go, "tpe-asha-early", world=1, replay_seed=3)
    assert cost.eval_passes == round(3 * cost.trial_epochs)  # the table's 3 evaluations an epoch
    assert cost.trial_epochs == pytest.approx(sum(t.last_epoch for t in results.trials))
    assert any(t.last_epoch % 1 for t in results.trials)  # stopped within an epoch: fractional epochs count


def test_the_study_protocol_at_shift_0_recovers_every_go_emotions_verdict_with_no_regret(replay, go):
    for world in go.seeds:
        _, results, cost = _run(replay, go, "grid", world=world)
        r = replay.score_replay(go, world, results, cost)
        assert all(r.found) and r.none == () and r.regret == 0.0


def test_a_grid_over_every_table_lr_finds_every_truth_verdict_on_both_tuning_tables(replay, go, reuters):
    every = [0.001, 0.00316227766017, 0.01, 0.0316227766017, 0.1, 0.316227766017, 1.0, 3.16227766017, 10.0]
    for table in (go, reuters):
        for world in table.seeds:
            _, results, cost = _run(replay, table, "grid", world=world, extra={"search.space.lr_factor": every})
            r = replay.score_replay(table, world, results, cost)
            assert all(r.found) and all(r.none), (table.name, world)
            assert cost.trial_epochs == 135  # half of the 2-seed grid: one seed


def test_a_real_search_folder_is_scored_like_its_replay(replay, go, tmp_path):
    """`--score`'s path on a tiny folder: a replay written out in the results layout scores as the replay."""
    import yaml

    from sweetspot import layout

    _, results, cost = _run(replay, go, "tpe-asha", world=0, replay_seed=5)
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / layout.CONFIG_FILE).write_text(yaml.safe_dump(go.doc["config"]))
    records = []
    for t in results.trials:
        (folder / layout.trial_folder(t.trial_id)).mkdir()
        (folder / layout.trial_folder(t.trial_id) / layout.PARAMS_FILE).write_text(json.dumps(t.config))
        (folder / layout.trial_folder(t.trial_id) / layout.RESULT_FILE).write_text(
            "".join(json.dumps({**row, "trial_id": t.trial_id}) + "\n" for row in t.history)
        )
        records.append(
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "config": t.config,
                "epochs": int(t.last_epoch),
                "last": t.history[-1],
                "best": {},
                "folder": layout.trial_folder(t.trial_id),
            }
        )
    (folder / layout.SUMMARY_FILE).write_text(
        json.dumps(layout.summary_document(records, metric="val_p1", mode="max", max_epochs=3, updated="now"))
    )
    scored = replay.score_folder(go, str(folder), command="test")
    expected = replay.summarise([replay.score_replay(go, 0, results, cost)], grid=go.grid_trial_epochs)
    assert scored["world"] == 0 and scored["trials"] == len(results.trials)
    for key, value in expected.items():
        assert scored[key] == value, key


@pytest.mark.e2e
@pytest.mark.parametrize(
    "method", ["grid", "random-asha", "tpe-asha", "tpe-asha-collapse", "tpe-asha-early", "edges", "edges-early"]
)
def test_the_real_search_path_agrees_with_the_fast_path_trial_for_trial(replay, method, ray_local):
    table = replay.Table.load("go_emotions")
    with tempfile.TemporaryDirectory() as work:
        both = replay.compare_paths(table, method, 3, work)
    assert len(both["fast"]) >= 20
    assert both["fast"] == both["real"]
    fast, real = both["fast_score"], both["real_score"]  # the same trials: only float summation order may differ
    assert real.trial_epochs == pytest.approx(fast.trial_epochs, rel=1e-9)
    assert dataclasses.replace(fast, trial_epochs=real.trial_epochs) == real
    if "asha" in method:  # ASHA stopped some trials early: they cost fewer epochs
        assert any(status == "early_stopped" for *_, status in both["real"])


def test_the_held_out_table_is_never_a_tuning_table(replay):
    assert set(replay.HELD_OUT_TABLES).isdisjoint(replay.TUNING_TABLES)
    assert "reuters_r90" in replay.HELD_OUT_TABLES
    assert (
        not Path(REPO / "bench" / "tables" / "reuters_r90.json").exists() or replay.Table.load("reuters_r90").role == "held-out"
    )
