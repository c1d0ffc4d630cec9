"""Checks against the machine and the cluster (search/preflight.py); the CLI cases are in
tests/test_reliability.py."""

from __future__ import annotations

import json

import pytest

from sweetspot.search.config import ConfigError, load_experiment_dict
from sweetspot.search.preflight import _autoscales, bundles_fit, check_cluster_resources, trial_bundles, unwritable


def test_a_cluster_that_cannot_grow_refuses_a_trial_no_node_holds(ray_local):
    # ray_local: one node of 2 CPUs, started by ray.init (no cluster file): it does not autoscale.
    assert check_cluster_resources(load_experiment_dict({"resources": {"cpus_per_trial": 2}})) is None
    with pytest.raises(
        ConfigError,
        match=r"resources\.cpus_per_trial: a trial needs 3 CPUs on one node, but the cluster's "
        r"largest node has 2 CPUs and the cluster does not autoscale",
    ):
        check_cluster_resources(load_experiment_dict({"resources": {"cpus_per_trial": 3}}))
    with pytest.raises(ConfigError, match=r"resources\.gpus_per_trial: a trial needs 1 CPUs and 1 GPUs"):
        check_cluster_resources(load_experiment_dict({"resources": {"gpus_per_trial": 1}}))


def test_a_multi_worker_trials_workers_may_sit_on_different_nodes():
    # Two nodes of 2 CPUs: a 2-worker trial of 3 CPUs fits across them (two workers of 1.495 CPUs and the
    # trial's own process of 0.01), which the one-node rule refused; a single-worker trial of 3 CPUs does not.
    nodes = [{"CPU": 2.0}, {"CPU": 2.0}]
    ddp = load_experiment_dict({"resources": {"cpus_per_trial": 3}, "train": {"workers_per_trial": 2}})
    bundles = trial_bundles(ddp)
    assert len(bundles) == 3 and sum(b["CPU"] for b in bundles) == pytest.approx(3.0)
    assert bundles_fit(bundles, nodes)
    assert not bundles_fit(trial_bundles(load_experiment_dict({"resources": {"cpus_per_trial": 3}})), nodes)
    # Every CPU split between the workers leaves no room for the trial's own process: Ray could not place it.
    full = load_experiment_dict({"resources": {"cpus_per_trial": 4}, "train": {"workers_per_trial": 2}})
    assert not bundles_fit(trial_bundles(full), nodes)
    gpus = load_experiment_dict({"resources": {"cpus_per_trial": 3, "gpus_per_trial": 2}, "train": {"workers_per_trial": 2}})
    assert bundles_fit(trial_bundles(gpus), [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}])
    assert not bundles_fit(trial_bundles(gpus), [{"CPU": 2.0, "GPU": 2.0}, {"CPU": 2.0}])


def test_a_cluster_launched_from_a_cluster_file_is_taken_as_autoscaling():
    def status(*types: str) -> bytes:
        return json.dumps({"autoscaler_report": {"active_nodes": {t: 1 for t in types}, "pending_nodes": []}}).encode()

    assert not _autoscales(status("node_84dc9744"))  # `ray start` nodes: named by id
    assert _autoscales(status("head", "gpu_worker"))  # `ray up`: named by available_node_types
    assert not _autoscales(None) and not _autoscales(b"not json")


def test_unwritable_names_the_file_in_the_way_and_writes_nothing(tmp_path):
    (tmp_path / "a-file").write_text("x")
    assert (
        unwritable(tmp_path / "a-file" / "results")
        == f"{tmp_path / 'a-file' / 'results'} cannot be created: {tmp_path / 'a-file'} is a file, not a folder"
    )
    assert unwritable(tmp_path / "new" / "deeper") is None and unwritable(tmp_path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
