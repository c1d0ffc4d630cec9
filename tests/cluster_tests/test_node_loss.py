"""A worker node of a real two-node Ray cluster lost mid-trial (bench/faults.py `node_loss`): its
raylet killed by PID with SIGKILL once the trial on it has written a checkpoint. The trial is retried
(`search.max_failures: 1`) on the head from that checkpoint and completes; the other trial is not
rerun; the results folder is complete and `sweetspot analyze` reads it."""

from __future__ import annotations

import os

import pytest

from tests.bench_faults import load_faults

pytestmark = pytest.mark.e2e


def test_a_trial_on_a_killed_worker_node_continues_from_its_checkpoint_on_the_head(tmp_path, datasets_dir):
    faults = load_faults()
    epochs = list(range(1, faults.NODE_LOSS_EPOCHS + 1))
    run = faults.node_loss(tmp_path, datasets_dir)

    killed = [name for name, t in run["trials"].items() if "worker" in t["nodes"]]
    assert killed == [run["killed_after"]["trial"]]
    trial = run["trials"][killed[0]]
    # Every epoch reported once (result.json as written: an epoch rerun after the retry would show
    # twice), on the worker node up to the checkpoint of the kill, then on the head.
    assert trial["epochs"] == epochs
    moved = trial["nodes"].index("head")
    assert moved >= run["killed_after"]["epoch"] >= 1
    assert trial["nodes"] == ["worker"] * moved + ["head"] * (len(epochs) - moved)
    # The retry continued the checkpoint's optimizer steps (not a fresh start at step 0).
    per_epoch = trial["steps"][0]
    assert trial["steps"] == [per_epoch * e for e in epochs]
    # One failure, recorded after the kill; the retry reported after it.
    assert len(trial["failures"]) == 1 and trial["failures"][0] >= -1  # Tune's times are whole seconds
    assert trial["reported_s"][moved] >= trial["failures"][0] - 1
    # numbered on from the checkpoint; beside the latest at most the best one is kept
    assert trial["checkpoints"][-1] == f"checkpoint_{len(epochs) - 1:06d}" and len(trial["checkpoints"]) <= 2

    (other,) = [t for name, t in run["trials"].items() if name not in killed]
    assert other["epochs"] == epochs and set(other["nodes"]) == {"head"} and other["failures"] == []

    assert run["raylet_gone"]  # the worker node's raylet, by PID
    assert set(run["summary_status"].values()) == {"terminated"} and len(run["summary_status"]) == 2
    assert run["analyze_rc"] == 0, run["analyze"]
    report = run["analyze"]
    assert len(report["trials"]) == 2 and {t["status"] for t in report["trials"]} == {"terminated"}
    assert all(t["epochs"] == len(epochs) and len(t["history"]) == len(epochs) for t in report["trials"])
    if os.environ.get("SWEETSPOT_RECORD_FIGURES"):  # docs/reliability-faults.json and docs/reliability.md
        faults.record("node_loss", faults._compact_node_loss(run))
