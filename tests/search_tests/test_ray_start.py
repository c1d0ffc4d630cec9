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
