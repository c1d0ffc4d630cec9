"""How many CPUs the embedded Ray is given: the process's affinity capped by a container's quota."""

from __future__ import annotations

import os

import pytest

from sweetspot.search.ray_start import usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, AFFINITY),  # no cgroup files: the affinity
        ({"cpu.max": "max 100000\n"}, AFFINITY),  # v2, no quota
        ({"cpu.max": "100000 100000\n"}, 1),  # v2: one CPU's worth
        ({"cpu.max": "150000 100000\n"}, 1),  # 1.5 CPUs: rounded down
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU: still one
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, AFFINITY),  # v1, no quota
        ({"cpu.max": "garbage"}, AFFINITY),  # unreadable: the affinity
    ],
)
def test_a_container_quota_caps_the_affinity(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(tmp_path) == expected


def test_a_quota_above_the_affinity_leaves_the_affinity(tmp_path):
    (tmp_path / "cpu.max").write_text(f"{(AFFINITY + 8) * 100000} 100000\n")
    assert usable_cpus(tmp_path) == AFFINITY


SCRIPT = """
import json, os, ray
from ray._private import services
from sweetspot.search.ray_start import init_ray

before = os.environ.get("RAY_ADDRESS")
init_ray(None, dashboard=False, quiet=True)

@ray.remote
def inside():  # what Ray code in a trial finds when it looks for "the" cluster (no address given)
    return services.canonicalize_bootstrap_address_or_die(None)

print(json.dumps({"found": ray.get(inside.remote()), "ours": ray.get_runtime_context().gcs_address,
                  "driver_env_kept": os.environ.get("RAY_ADDRESS") == before}))
ray.shutdown()
"""


@pytest.mark.slow
def test_with_another_ray_on_the_machine_code_in_a_trial_finds_the_embedded_ray(tmp_path):
    import json
    import subprocess
    import sys

    from tests.cluster_tests.local_cluster import LocalCluster
    from tests.conftest import REPO

    env = {**os.environ, "RAY_ADDRESS": ""}
    with LocalCluster(env=env, head_cpus=1, worker_cpus=[]):  # another Ray on this machine
        run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["found"] == out["ours"] and out["driver_env_kept"]
