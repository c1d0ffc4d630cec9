"""`train.workers_per_trial: 2` runs the same loop under Ray Train's TorchTrainer (DDP) inside the
Tune trial, each worker on its shard of train, reporting to Tune every epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_two_workers_per_trial_train_on_shards_and_report_each_epoch(tmp_path, datasets_dir):
    config = tmp_path / "ddp.yaml"
    config.write_text(f"""
name: ddp
storage_path: {tmp_path / 'results'}
data: {{source: go_emotions, max_len: 48, train_limit: 256, validation_limit: 64, test_limit: 32}}
model: {{name: tiny-distilbert}}
train: {{epochs: 2, batch_size: 16, workers_per_trial: 2}}
search:
  num_samples: 1
  max_concurrent_trials: 1
  space: {{optimizer: [adam], lr: {{low: 1.0e-3, high: 1.0e-3}}}}
  scheduler: {{name: fifo}}
resources: {{cpus_per_trial: 2}}
""")
    env = {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache"), "RAY_ADDRESS": ""}
    run = subprocess.run([sys.executable, "-m", "sweetspot.cli", "search", str(config)], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    folder = tmp_path / "results" / "ddp"
    analyze = subprocess.run([sys.executable, "-m", "sweetspot.cli", "analyze", str(folder), "--json"], capture_output=True,
                             text=True, cwd=REPO, env=env, timeout=120)
    trial = json.loads(analyze.stdout)["trials"][0]
    assert trial["status"] == "terminated" and trial["epochs"] == 2
    # Each worker sees half of the 256 documents: 8 steps of 16 per epoch.
    assert [(row["epoch"], row["step"]) for row in trial["history"]] == [(1, 8), (2, 16)]
    assert all(0.0 <= row["val_p1"] <= 1.0 and row["diverged"] == 0 for row in trial["history"])
    # The TorchTrainer's own run (checkpoints of rank 0) lives inside the trial's folder.
    assert list((folder / f"trial_{trial['trial_id']}").glob("ddp_*"))
