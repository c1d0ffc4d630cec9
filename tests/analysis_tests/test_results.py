"""Reading a results folder built by hand, with known outcomes, and no Ray."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from sweetspot.analysis.recovery import score
from sweetspot.analysis.report import analyze, format_table, to_json
from sweetspot.analysis.results import ResultsError, load_results, results_from_table, results_to_table
from sweetspot.analysis.sweetspot import find_sweet_spots
from tests.analysis_tests.folders import row, trial, write_results
from tests.conftest import REPO


@pytest.fixture
def results_dir(tmp_path):
    return write_results(
        tmp_path / "exp",
        [
            trial("aaa", "adam", 1e-4, [0.30, 0.52, 0.61], status="terminated"),
            trial("bbb", "adagrad", 1e-1, [0.30], status="early_stopped"),
            trial("ccc", "adam", 1e-2, rows=[row(1, 0.30), row(2, 0.0, diverged=1)], status="diverged"),
            trial("ddd", "adamw", 1e-3, [], status="errored", error="RuntimeError: boom"),
        ],
        epochs=3,
    )


def test_trials_are_ranked_by_their_best_epoch(results_dir):
    results = load_results(results_dir)
    ranked = results.ranked()
    assert [t.trial_id for t in ranked] == ["aaa", "bbb", "ccc", "ddd"]
    aaa = ranked[0]
    assert aaa.status == "terminated" and aaa.epochs == 3 and aaa.best()["val_p1"] == 0.61 and aaa.best()["epoch"] == 3
    assert ranked[2].best()["val_p1"] == 0.30  # the diverged epoch is never the best
    assert ranked[3].history == [] and ranked[3].error == "RuntimeError: boom"
    assert results.majority_p1 == 0.3


def test_json_lists_every_trial_with_status_config_epochs_and_best(results_dir):
    summary = to_json(analyze(load_results(results_dir)))
    assert summary["majority_p1"] == 0.3
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    assert {k: v["status"] for k, v in by_id.items()} == {
        "aaa": "terminated",
        "bbb": "early_stopped",
        "ccc": "diverged",
        "ddd": "errored",
    }
    assert by_id["aaa"]["config"] == {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0}
    assert by_id["bbb"]["epochs"] == 1 and [h["epoch"] for h in by_id["aaa"]["history"]] == [1, 2, 3]


def test_table_sorts_by_metric_and_prints_the_floor(results_dir):
    table = format_table(load_results(results_dir))
    lines = table.splitlines()
    assert lines[2].startswith("aaa") and "0.6100" in lines[2]
    assert "majority-label floor" in table and "0.3000" in table


def test_analyze_cli_works_without_ray_and_rejects_other_folders(results_dir, tmp_path):
    code = (
        "import sys, runpy; sys.argv = ['sweetspot', 'analyze', sys.argv[1], '--json']; "
        "from sweetspot.cli import main; rc = main(sys.argv[1:]); "
        "assert 'ray' not in sys.modules and 'torch' not in sys.modules, 'analyze imported ray or torch'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(results_dir)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["trials"]) == 4
    with pytest.raises(ResultsError, match="not a sweetspot results folder"):
        load_results(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", "analyze", str(tmp_path / "missing")], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such results folder" in proc.stderr


def _plain(x):
    """Dataclasses as nested dicts with NaN as None, so two analyses compare with ==."""
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


def test_a_table_round_trip_reproduces_the_folders_sweet_spots_exactly(tmp_path):
    folder = write_results(
        tmp_path / "grid",
        [
            trial("a0", "adam", 1e-5, [0.35, 0.40], seed=0),
            trial("a1", "adam", 1e-5, [0.36, 0.42], seed=1),
            trial("b0", "adam", 1e-4, [0.50, 0.60], seed=0),
            trial("b1", "adam", 1e-4, [0.52, 0.61], seed=1),
            trial("c0", "adam", 1e-3, rows=[row(1, 0.3), row(2, 0.0, diverged=1)], seed=0),
            trial("c1", "adam", 1e-3, [0.5, 0.55], seed=1),
            trial("g0", "adagrad", 1e-2, rows=[row(1, 0.3, test_p1=0.31), row(2, float("nan"))], seed=0),
            trial("s0", "adagrad", 1e-1, [0.45], seed=0, status="early_stopped"),
        ],
        epochs=2,
    )
    results = load_results(folder)
    results.commit = "0123abc"
    table = json.loads(json.dumps(results_to_table(results), allow_nan=False))  # strict JSON, as committed to the repository
    assert table["commit"] == "0123abc" and table["config"]["train"]["epochs"] == 2
    assert table["trials"][0]["config"] == {"optimizer": "adam", "lr": 1e-5, "weight_decay": 0.0, "seed": 0}
    again = results_from_table(table)
    assert results_to_table(again) == table
    assert (again.metric, again.mode, again.max_epochs, again.commit) == ("val_p1", "max", 2, "0123abc")
    truth = find_sweet_spots(results)
    assert _plain(find_sweet_spots(again)) == _plain(truth) and truth.optimizers[1].found
    assert _plain(find_sweet_spots(results_from_table(table), metric="val_loss")) == _plain(
        find_sweet_spots(results, metric="val_loss")
    )
    r = score(find_sweet_spots(again), truth)
    assert r.agreement == 1.0 and r.regret == 0.0 and all(o.iou in (None, 1.0) for o in r.optimizers)


@pytest.mark.parametrize(
    "broken, message",
    [
        ([], "table: the table: must be a JSON object"),
        ({"config": {}, "commit": None}, "table: trials: must be a list"),
        (
            {"config": {}, "commit": None, "trials": [{"trial_id": "a", "status": "terminated", "config": {}}]},
            "table: trials[0].history: missing or not a list",
        ),
        ({"config": {}, "commit": 7, "trials": []}, "table: commit: must be a string or null"),
    ],
)
def test_a_broken_table_is_refused_naming_the_key(broken, message):
    with pytest.raises(ResultsError) as e:
        results_from_table(broken)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_an_ended_trial_whose_only_report_is_torn_reads_errored_naming_the_file_not_terminated(tmp_path, cli):
    folder = write_results(tmp_path / "r", [trial("a", "adam", 1e-4, [0.4, 0.5, 0.6]), trial("b", "adam", 1e-3, [0.4, 0.5, 0.6])])
    result = folder / "trial_b" / "result.json"
    result.write_text(result.read_text().splitlines()[0][:40])  # one report, cut short while written
    done = cli("analyze", folder, "--json", "--no-report", "--no-baselines")
    assert done.returncode == 0, done.stderr
    by_id = {t["trial_id"]: t for t in json.loads(done.stdout)["trials"]}
    assert by_id["a"]["status"] == "terminated" and by_id["b"]["status"] == "errored"
    assert "trial_b/result.json: its only report is incomplete" in by_id["b"]["error"]
    # A running trial's one torn line is a report being written: it stays running.
    (folder / "summary.json").write_text((folder / "summary.json").read_text().replace('"terminated"', '"running"'))
    assert load_results(folder).trials[1].status == "running"
