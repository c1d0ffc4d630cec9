"""One real search, in process through `sweetspot.cli.main`, read three ways: sweetspot's console (the
plan, a line per trial with its verdict, the answer; Tune's tables and warnings silenced), the MLflow
runs that `callbacks: [mlflow]` writes, and the results folder opened as a Tune experiment."""

from __future__ import annotations

import json
import re

import pytest

from sweetspot.cli import main
from tests.conftest import REPO

SLICE = ["data.train_limit=200", "data.validation_limit=100", "data.test_limit=100"]
VERDICT = re.compile(r"^\[\s*(\d+)/(\d+)\] (\S+)\s+lr (\S+)\s+val_p1 +(\S+)\s+\S+\s+(.*)$")


@pytest.fixture(scope="module")
def search(tmp_path_factory, datasets_dir):
    import os

    tmp = tmp_path_factory.mktemp("console")
    old = {k: os.environ.get(k) for k in ("SWEETSPOT_DATA_DIR", "SWEETSPOT_CACHE_DIR", "RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    os.environ.update(SWEETSPOT_DATA_DIR=str(datasets_dir), SWEETSPOT_CACHE_DIR=str(tmp / "cache"))
    for k in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        os.environ.pop(k, None)
    sets = [
        f"storage_path={tmp / 'results'}",
        "model.name=tiny-distilbert",
        "train.epochs=1",
        "search.num_samples=3",
        "callbacks=[mlflow]",
        *SLICE,
    ]
    argv = ["search", str(REPO / "examples" / "quickstart.yaml"), *(a for s in sets for a in ("--set", s))]
    yield tmp / "results" / "quickstart", argv
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_the_console_is_sweetspots_own_and_mlflow_and_tune_read_the_same_search(search, capfd):
    folder, argv = search
    assert main(argv) == 0
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    assert len(lines) < 80, "\n".join(lines)
    assert lines[0] == f"sweetspot search: quickstart -> {folder}"  # the plan comes before anything of Ray's
    assert "\x1b" not in out + err  # not a terminal: no escapes
    for noise in ("Current best trial", "TERMINATED", "Experiment state snapshotting", "Trial status", "╭", "INFO"):
        assert noise not in out + err
    summary = json.loads((folder / "summary.json").read_text())
    trial_lines = [m for m in map(VERDICT.match, lines) if m]
    assert len(trial_lines) == len(summary["trials"]) >= 1
    assert {m.group(2) for m in trial_lines} == {"3"}
    for m in trial_lines:
        assert m.group(6).startswith(("trains", "fails", "collapsed onto", "diverged", "stopped early", "errored")), m.group(0)
    assert sum(line.startswith("  progress: ") for line in lines) >= len(trial_lines)  # and one every 5 min meanwhile
    assert "THE ANSWER" in lines
    assert lines[-1] == f"next: sweetspot analyze {folder}   (the report, the study's claims, every trial)"

    # callbacks: [mlflow] -> one MLflow run per trial in the results folder's store, with the trial's metrics
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(summary["trials"])
    assert all("val_p1" in r.data.metrics and r.data.params.get("optimizer") in ("adam", "adagrad") for r in runs)

    # docs/integrations.md: the results folder opens as a Tune experiment
    from ray import tune

    from sweetspot.trainable.entry import train_fn

    grid = tune.Tuner.restore(str(folder), trainable=train_fn).get_results()
    assert len(grid) == len(summary["trials"]) and all("val_p1" in r.metrics for r in grid)
