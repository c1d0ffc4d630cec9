"""bench/gpu.py in its CPU dry mode, run as a user runs it, so the GPU benchmark never rots between
the sessions that have a GPU: a tiny DistilBERT, 96 synthetic documents, 2 epochs, the bare loop,
a `sweetspot search` trial on a real local Ray and the checkpoint's cost, all really run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_benchmark_dry_run_measures_every_part(tmp_path):
    out = tmp_path / "gpu-dry.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--dry", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["card"] == "cpu (dry run)" and result["settings"]["epochs"] == 2
    assert result["data"]["train_docs"] == 96 and result["model"]["labels"] == 3801  # EURLex-4K's label count
    for side in ("bare", "bare_host_reads_every_step", "loop_in_process"):
        assert len(result[side]["epoch_seconds"]) == 2 and result[side]["docs_per_s"] > 0
    assert [row["trials"] for row in result["sharing"]] == [1]  # the GPU run adds 2 and 4 (minutes on 2 CPUs)
    for row in result["sharing"]:
        assert row["failed"] == 0 and row["statuses"] == ["terminated"] * row["trials"]
        assert [len(e) for e in row["epoch_seconds"]] == [2] * row["trials"]  # one Tune result per epoch
        assert len(row["docs_per_s_per_trial"]) == row["trials"] and row["aggregate_docs_per_s"] > 0
    assert 0 < result["trial_vs_bare"] < 10 and result["trial_startup_s"] > 0
    # The checkpoint the trials wrote is the one timed apart: same files, same size.
    assert result["checkpoint"]["mb"] > 1 and abs(result["checkpoint"]["mb_in_trial_folder"] - result["checkpoint"]["mb"]) < 0.01
    assert result["checkpoint"]["write_s"] > 0 and result["checkpoint"]["copy_s"] > 0
