"""`train.workers_per_trial: 2` runs the same loop under Ray Train's TorchTrainer (DDP) inside the
Tune trial, each worker on its shard of train: 2 workers at batch b follow 1 worker at batch 2b
on the same global batches (gradients really synchronised), reporting to Tune every epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

DOCS = 64  # training documents: one global batch, so every epoch is one step on the whole split
EPOCHS = 4


@pytest.fixture(scope="module")
def dropout_free_tiny_distilbert(tmp_path_factory, minilm_path) -> str:
    """tiny-distilbert's shape with every dropout 0, as a local model folder (with MiniLM's tokenizer).

    The table's tiny-distilbert keeps DistilBERT's encoder dropout (0.1), whose masks depend on how
    a batch is split between workers; without dropout the two runs compute the same function.
    """
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    folder = tmp_path_factory.mktemp("tiny-distilbert-no-dropout")
    torch.manual_seed(0)  # the saved weights, so that every run of this test starts from the same model
    config = DistilBertConfig(
        vocab_size=30522,
        dim=64,
        hidden_dim=128,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=512,
        dropout=0.0,
        attention_dropout=0.0,
    )
    DistilBertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return str(folder)


def _search(tmp_path, datasets_dir, model: str, workers: int) -> tuple[dict, str]:
    """Runs `sweetspot search` with `workers` workers at batch DOCS / workers; returns the trial
    (`analyze --json`) and its results folder."""
    name = f"ddp{workers}"
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"""
name: {name}
storage_path: {tmp_path / "results"}
data: {{source: go_emotions, max_len: 48, train_limit: {DOCS}, validation_limit: 64, test_limit: 32}}
model: {{name: {model}, dropout: 0.0}}
train: {{epochs: {EPOCHS}, batch_size: {DOCS // workers}, workers_per_trial: {workers}}}
search:
  num_samples: 1
  max_concurrent_trials: 1
  space: {{optimizer: [adam], lr: {{low: 3.0e-3, high: 3.0e-3}}}}
  scheduler: {{name: fifo}}
resources: {{cpus_per_trial: 2}}
""")
    env = {
        **os.environ,
        "SWEETSPOT_DATA_DIR": str(datasets_dir),
        "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache"),
        "RAY_ADDRESS": "",
    }
    run = subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", "search", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    folder = tmp_path / "results" / name
    analyze = subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", "analyze", str(folder), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    return json.loads(analyze.stdout)["trials"][0], folder


def test_two_workers_follow_one_worker_on_the_same_global_batches(tmp_path, datasets_dir, dropout_free_tiny_distilbert):
    one, _ = _search(tmp_path, datasets_dir, dropout_free_tiny_distilbert, workers=1)
    two, folder = _search(tmp_path, datasets_dir, dropout_free_tiny_distilbert, workers=2)
    for trial in (one, two):
        assert trial["status"] == "terminated" and trial["epochs"] == EPOCHS
        # One step an epoch: 1 worker at batch 64, or each of 2 workers at batch 32 on its half.
        assert [(row["epoch"], row["step"]) for row in trial["history"]] == [(e, e) for e in range(1, EPOCHS + 1)]
        assert all(row["diverged"] == 0 for row in trial["history"])
    # The global batch of every step is the whole split, whatever order or sharding the loader
    # picks, so the averaged gradients of the two halves equal the one worker's gradient. Without
    # synchronised gradients rank 0 would follow its half alone from the second step on.
    # train_loss: the model before each step, on all workers' documents; val_loss: after the step.
    for key in ("train_loss", "val_loss"):
        want, got = [row[key] for row in one["history"]], [row[key] for row in two["history"]]
        assert got == pytest.approx(want, rel=1e-5, abs=0), key
    # The TorchTrainer's own run (checkpoints of rank 0) lives inside the trial's folder.
    assert list((folder / f"trial_{two['trial_id']}").glob("ddp_*"))
