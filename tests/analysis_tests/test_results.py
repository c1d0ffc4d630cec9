"""Reading a results folder built by hand, with known outcomes, and no Ray."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sweetspot.analysis.report import analyze, format_table, to_json
from sweetspot.analysis.results import ResultsError, load_results
from tests.conftest import REPO


def _epoch(epoch, p1, **extra):
    return {"trial_id": extra.pop("trial_id"), "epoch": epoch, "train_loss": 0.1, "val_loss": 0.2, "val_p1": p1,
            "val_p3": p1 / 2, "val_p5": p1 / 3, "majority_p1": 0.3, "diverged": extra.pop("diverged", 0),
            "training_iteration": epoch, **extra}


def _write_trial(folder, trial_id, config, p1s, diverged_last=False):
    trial = folder / f"trial_{trial_id}"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps(config))
    rows = [_epoch(i + 1, p, trial_id=trial_id, diverged=int(diverged_last and i == len(p1s) - 1)) for i, p in enumerate(p1s)]
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "exp"
    _write_trial(folder, "aaa", {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0}, [0.30, 0.52, 0.61])
    _write_trial(folder, "bbb", {"optimizer": "adagrad", "lr": 1e-1, "weight_decay": 0.0}, [0.30])
    _write_trial(folder, "ccc", {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0}, [0.30, 0.0], diverged_last=True)
    summary = {"metric": "val_p1", "mode": "max", "max_epochs": 3, "trials": [
        {"trial_id": "aaa", "status": "terminated", "config": {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0}},
        {"trial_id": "bbb", "status": "early_stopped", "config": {"optimizer": "adagrad", "lr": 1e-1, "weight_decay": 0.0}},
        {"trial_id": "ccc", "status": "diverged", "config": {"optimizer": "adam", "lr": 1e-2, "weight_decay": 0.0}},
        {"trial_id": "ddd", "status": "errored", "config": {"optimizer": "adamw", "lr": 1e-3}, "error": "RuntimeError: boom"},
    ]}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


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
        "aaa": "terminated", "bbb": "early_stopped", "ccc": "diverged", "ddd": "errored"}
    assert by_id["aaa"]["config"] == {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0}
    assert by_id["bbb"]["epochs"] == 1 and [h["epoch"] for h in by_id["aaa"]["history"]] == [1, 2, 3]


def test_table_sorts_by_metric_and_prints_the_floor(results_dir):
    table = format_table(load_results(results_dir))
    lines = table.splitlines()
    assert lines[2].startswith("aaa") and "0.6100" in lines[2]
    assert "majority-label floor" in table and "0.3000" in table


def test_analyze_cli_works_without_ray_and_rejects_other_folders(results_dir, tmp_path):
    code = ("import sys, runpy; sys.argv = ['sweetspot', 'analyze', sys.argv[1], '--json']; "
            "from sweetspot.cli import main; rc = main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules and 'torch' not in sys.modules, 'analyze imported ray or torch'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(results_dir)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["trials"]) == 4
    with pytest.raises(ResultsError, match="not a sweetspot results folder"):
        load_results(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "sweetspot.cli", "analyze", str(tmp_path / "missing")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such results folder" in proc.stderr
