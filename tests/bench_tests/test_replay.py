"""bench/replay.py: replays of search methods against the committed ground-truth tables."""

from __future__ import annotations

import importlib.util
import math
import tempfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def replay():
    spec = importlib.util.spec_from_file_location("replay", REPO / "bench" / "replay.py")
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["replay"] = module
    spec.loader.exec_module(module)
    return module


def test_the_truth_is_the_tables_own_sweet_spots_and_scores_perfectly(replay):
    from sweetspot.analysis.recovery import score

    table = replay.Table.load("go_emotions")
    truth = table.truth()
    assert {s.optimizer for s in truth.optimizers} == {"adagrad", "adadelta", "adam", "amsgrad", "adamw"}
    perfect = score(truth, truth)
    assert perfect.agreement == 1.0 and set(perfect.edge_errors) <= {0.0} and perfect.regret == 0.0


def test_a_continuous_lr_maps_to_the_nearest_table_lr_in_log10(replay):
    table = replay.Table.load("go_emotions")
    lrs = table.lrs["adam"]  # 1e-6 .. 1e-2, half a decade apart
    assert table.nearest_lr("adam", 1.7e-4) == pytest.approx(1e-4)  # log10 -3.77: nearer -4 than -3.5
    assert table.nearest_lr("adam", 1.8e-4) == pytest.approx(3.16227766017e-4)
    assert table.nearest_lr("adam", 1e-9) == min(lrs) and table.nearest_lr("adam", 1.0) == max(lrs)


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["grid", "random-asha", "tpe-asha", "tpe-asha-collapse", "tpe-asha-early", "edges", "edges-early"])
def test_the_real_search_path_agrees_with_the_fast_path_trial_for_trial(replay, method, ray_local):
    table = replay.Table.load("go_emotions")
    with tempfile.TemporaryDirectory() as work:
        both = replay.compare_paths(table, method, 3, work)
    assert len(both["fast"]) >= 20
    assert both["fast"] == both["real"]
    assert both["fast_score"] == both["real_score"]
    if "asha" in method:  # ASHA stopped some trials early: they cost fewer epochs
        assert any(status == "early_stopped" for *_, status in both["real"])


def test_thirty_fast_replays_give_finite_recovery_scores(replay):
    table = replay.Table.load("reuters_all")
    truth = table.truth()
    recoveries = []
    for seed in range(30):
        with tempfile.TemporaryDirectory() as work:
            results, _ = replay.simulate(table, table.experiment("random-asha", storage=work, replay_seed=seed), seed, workdir=work)
        recoveries.append(replay.score_replay(truth, results))
    summary = replay.summarise(recoveries)
    assert summary["replays"] == 30 and 0.0 <= summary["verdict_agreement"] <= 1.0
    assert 0.0 < summary["trial_epochs_fraction"] < 1.0
    assert all(math.isfinite(r.trial_epochs_fraction) for r in recoveries)
