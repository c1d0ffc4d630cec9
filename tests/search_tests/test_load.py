"""200 short trials through the real search path (bench/faults.py `load`: the runner's Tuner and run
records, trials replaying a ground-truth table): every trial gets its record, a process polling
`summary.json` throughout never reads it torn, and the driver's memory stays bounded."""

from __future__ import annotations

import os

import pytest

from tests.bench_faults import load_faults

pytestmark = pytest.mark.e2e

GROWTH_BOUND_MIB = 64  # driver RSS growth from 50 to 200 ended trials (measured: docs/reliability.md)


def test_200_short_trials_all_recorded_summary_never_torn_driver_memory_bounded(tmp_path):
    run = load_faults().load(tmp_path, trials=200)
    assert run["driver"]["trials"] == 200 and run["records"] == 200
    assert set(run["statuses"]) <= {"terminated", "early_stopped"}
    assert run["reads"] >= 100 and run["torn_reads"] == 0, run["torn_examples"]
    assert run["rss_at_50_mib"] > 100 and run["rss_at_end_mib"] > 100  # sampled from the live driver
    assert run["growth_50_to_end_mib"] < GROWTH_BOUND_MIB, run["rss_by_ended"]
    if os.environ.get("SWEETSPOT_RECORD_FIGURES"):  # docs/reliability-faults.json and docs/reliability.md
        load_faults().record("load", run)
