"""A search on a real two-node Ray cluster with token authentication, driven as a user drives one:
`sweetspot search --address …` from a shell, and `ray job submit --working-dir . -- sweetspot search …`.

The cluster is a head and a worker node started with `ray start` (tests/cluster_tests/local_cluster.py),
1 CPU each, so two 1-CPU trials can only run on different nodes. Needs `unshare` (util-linux) and
user namespaces, to give the driver a disk of its own as a cluster's head has. Both nodes run with
RAY_AUTH_MODE=token and read the token from `~/.ray/auth_token` in their HOME, as `cluster.yaml`'s
file mount arranges on a real cluster. The results folder is a local path every node can write to: on
one machine, what NFS or S3 gives a real cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sweetspot import layout
from sweetspot.trainable import keys
from sweetspot.trainable import score as score_rules
from tests.cluster_tests.local_cluster import RAY, LocalCluster
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SWEETSPOT = str(Path(sys.executable).with_name("sweetspot"))
SLICE = {"source": "go_emotions", "max_len": 32, "train_limit": 160, "validation_limit": 64, "test_limit": 32}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")  # the nodes' and the token holder's HOME
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env.update(
        HOME=str(home),
        RAY_AUTH_MODE="token",
        RAY_USAGE_STATS_ENABLED="0",
        # Started from the venv, as a user starts `ray start` from an activated one: job
        # drivers inherit this PATH and find the venv's `python` and `sweetspot`.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    with LocalCluster(env=env, head_cpus=1, worker_cpus=[1]) as c:
        yield c


@pytest.fixture
def env(cluster, tmp_path, datasets_dir):
    """A client with the cluster's token (in its HOME) and the data settings."""
    return {**cluster.env, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache")}


def _run(args, env, cwd, timeout=300):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _scored_by_the_rule(trial: dict) -> bool:
    """A terminated trial's score is trainable/score.py's: its best val_p1 over the epoch ends that count."""
    counted = [row[keys.VAL_P1] for row in trial["history"] if score_rules.counts(row)]
    return trial["score"] == (max(counted) if counted else None)


def _analyze(folder: Path, env) -> dict:
    run = _run([SWEETSPOT, "analyze", str(folder), "--json"], env=env, cwd=folder.parent, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_search_places_trials_on_both_nodes_and_fills_one_results_folder(cluster, env, tmp_path):
    config = tmp_path / "twonode.yaml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "name": "twonode",
                "storage_path": str(tmp_path / "results"),
                "data": SLICE,
                "model": {"name": "tiny-distilbert"},
                "train": {"epochs": 2, "batch_size": 16},
                "search": {
                    "algorithm": "grid",
                    "space": {"optimizer": ["adam", "adamw"], "lr": [1e-3, 1e-4], "weight_decay": [0.0]},
                    "scheduler": {"name": "fifo"},
                    "max_concurrent_trials": 2,
                },
                "resources": {"cpus_per_trial": 1},
            }
        )
    )
    # The driver prepares the data into a cache only it can see (a tmpfs in its own mount namespace):
    # on a cluster the prepared shards are on the head's disk, where no trial runs. It starts in a
    # folder outside the project: the driver and the trials import the installed package.
    cache = Path(env["SWEETSPOT_CACHE_DIR"])
    cache.mkdir()
    private_cache = f"mount -t tmpfs tmpfs {shlex.quote(str(cache))} && exec " + shlex.join(
        [SWEETSPOT, "search", str(config), "--address", cluster.address]
    )
    run = _run(["unshare", "--mount", "--map-root-user", "sh", "-c", private_cache], env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-4000:] + cluster.logs()
    assert list(cache.iterdir()) == []  # the nodes never saw the prepared shards

    folder = tmp_path / "results" / "twonode"
    nodes = cluster.alive_nodes()
    assert len(nodes) == 2 and sorted(nodes.values()) == [False, True]  # one head, one worker node
    trial_dirs = sorted(folder.glob("trial_*"))
    assert len(trial_dirs) == 4
    placed = set()
    for trial in trial_dirs:
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert [r[keys.EPOCH] for r in rows] == [1, 2]
        assert len({r[keys.NODE_ID] for r in rows}) == 1  # a trial stays on its node
        placed.add(rows[0][keys.NODE_ID])
        assert (trial / "checkpoint_000001" / "model.safetensors").is_file()
    assert placed == set(nodes)  # trials ran on the head and on the worker node

    # One folder holds everything, and the analysis reads all of it.
    assert (folder / layout.CONFIG_FILE).is_file() and (folder / layout.SUMMARY_FILE).is_file()
    report = _analyze(folder, env)
    assert len(report["trials"]) == 4
    assert {t["status"] for t in report["trials"]} == {"terminated"}
    assert all(t["epochs"] == 2 and len(t["history"]) == 2 for t in report["trials"])
    assert all(_scored_by_the_rule(t) for t in report["trials"]), [(t["score"], t["history"]) for t in report["trials"]]
    assert {(t["config"]["optimizer"], t["config"]["lr"]) for t in report["trials"]} == {
        (o, lr) for o in ("adam", "adamw") for lr in (1e-3, 1e-4)
    }


@pytest.mark.parametrize("client", ["no token", "wrong token"])
def test_search_refused_by_the_cluster_ends_with_one_line_and_writes_nothing(cluster, env, tmp_path, client):
    config = tmp_path / "refused.yaml"
    config.write_text(
        json.dumps(
            {"name": "refused", "storage_path": str(tmp_path / "results"), "data": SLICE, "model": {"name": "tiny-distilbert"}}
        )
    )
    changes = {"HOME": str(tmp_path)} if client == "no token" else {"RAY_AUTH_TOKEN": secrets.token_hex(32)}
    run = _run([SWEETSPOT, "search", str(config), "--address", cluster.address], env={**env, **changes}, cwd=tmp_path)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sweetspot search: error: --address {cluster.address}: cannot join the Ray cluster: ")
    assert "needs RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or $RAY_AUTH_TOKEN" in last
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "results").exists()


def _submit(cluster, env, storage: Path, *, name: str, cwd: Path = REPO, config: Path = Path("examples/quickstart.yaml")):
    """`ray job submit --working-dir .` from `cwd` (the project folder, as the README shows it); the
    job first prints which Python and which `sweetspot.search` package it runs, then runs the search."""
    runtime_env = {
        "env_vars": {"SWEETSPOT_DATA_DIR": env["SWEETSPOT_DATA_DIR"], "SWEETSPOT_CACHE_DIR": env["SWEETSPOT_CACHE_DIR"]}
    }
    overrides = [
        f"name={name}",
        f"storage_path={storage}",
        "model.name=tiny-distilbert",
        "train.epochs=1",
        "search.algorithm=tpe",
        "search.stop_early_collapse=false",
        "search.num_samples=2",
        "search.scheduler.name=fifo",
    ]  # the TPE path (the quickstart is the region search) + [f"data.{k}={v}" for k, v in SLICE.items()]
    search = " ".join([f"sweetspot search {config}", *(f"--set {o}" for o in overrides)])
    probe = (
        "python -c \"import sys, sweetspot.search as search; print('job python:', sys.prefix); "
        "print('job search:', search.__file__)\""
    )
    return _run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            cluster.dashboard_url,
            "--working-dir",
            ".",
            "--runtime-env-json",
            json.dumps(runtime_env),
            "--",
            "sh",
            "-c",
            f"{probe} && {search}",
        ],
        env=env,
        cwd=cwd,
    )


def test_job_submit_with_the_token_runs_the_search_and_without_it_fails_cleanly(cluster, env, tmp_path):
    storage = tmp_path / "results"
    # Without a token: the client finds none (a HOME without .ray/auth_token) and stops before
    # sending anything; the job never starts.
    no_token = _submit(cluster, {**env, "HOME": str(tmp_path)}, storage, name="refused")
    assert no_token.returncode != 0
    assert "AuthenticationError: Token authentication is enabled but Ray couldn't find an authentication token" in no_token.stderr
    # A client that does not set RAY_AUTH_MODE sends no token: the cluster answers 401.
    unauthenticated = _submit(
        cluster, {**{k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}, "HOME": str(tmp_path)}, storage, name="refused"
    )
    assert unauthenticated.returncode != 0
    assert "AuthenticationError: Authentication required: Unauthorized: Missing authentication token" in unauthenticated.stderr
    # A wrong token: 403.
    wrong = _submit(cluster, {**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}, storage, name="refused")
    assert wrong.returncode != 0
    assert "AuthenticationError: Authentication failed: Forbidden: Invalid authentication token" in wrong.stderr
    assert not storage.exists()

    # With the token (~/.ray/auth_token in the client's HOME): the job runs the search.
    job = _submit(cluster, env, storage, name="job")
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:] + cluster.logs()
    assert "succeeded" in job.stderr + job.stdout
    # The job's Python is the venv the cluster was started from, and `sweetspot.search` comes from
    # the uploaded working directory, not from the project folder on this machine.
    assert f"job python: {sys.prefix}\n" in job.stdout
    job_search = next(line for line in job.stdout.splitlines() if line.startswith("job search:")).split(": ", 1)[1]
    assert "/runtime_resources/working_dir_files/" in job_search and not job_search.startswith(str(REPO))

    folder = storage / "job"
    report = _analyze(folder, env)
    assert len(report["trials"]) == 2 and {t["status"] for t in report["trials"]} == {"terminated"}
    assert all(t["epochs"] == 1 and _scored_by_the_rule(t) for t in report["trials"])
    assert (folder / "optuna.db").is_file()  # the TPE study beside the results


def test_job_submit_from_a_project_with_its_own_data_search_analysis_trainable_runs_sweetspots_code(cluster, env, tmp_path):
    """Ray puts the job's working directory first on the path of the driver and every worker: a
    user's own `data/` or `search/` package there must not replace sweetspot's."""
    from tests.test_namespace import _decoys

    project = tmp_path / "project"
    project.mkdir()
    _decoys(project)
    (project / "exp.yaml").write_text((REPO / "examples" / "quickstart.yaml").read_text())
    storage = tmp_path / "results"
    job = _submit(cluster, env, storage, name="decoys", cwd=project, config=Path("exp.yaml"))
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:] + cluster.logs()
    job_search = next(line for line in job.stdout.splitlines() if line.startswith("job search:")).split(": ", 1)[1]
    assert job_search == str(REPO / "search" / "__init__.py")  # the installed sweetspot, not the user's search/
    report = _analyze(storage / "decoys", env)
    assert len(report["trials"]) == 2 and {t["status"] for t in report["trials"]} == {"terminated"}
