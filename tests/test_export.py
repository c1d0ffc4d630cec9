"""`sweetspot export` on a real search: one `sweetspot search` (MiniLM on a go_emotions slice, one
configuration, 3 epochs with mid-epoch reports), then the export. The folder loads with transformers'
AutoModel and AutoTokenizer, and `sweetspot.export.load` gives the trial's own validation P@1 at the
evaluation of its score (trainable/score.py), from its kept best checkpoint; a trial holds at most
two checkpoints, the latest alone with optimizer state."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def _sweetspot(*args, env, timeout):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def searched(tmp_path_factory, datasets_dir):
    tmp = tmp_path_factory.mktemp("export")
    config = tmp / "export.yaml"
    config.write_text(f"""
name: export
storage_path: {tmp / "results"}
data: {{source: go_emotions, max_len: 24, train_limit: 480, validation_limit: 96, test_limit: 16}}
model: {{name: minilm-l6}}
train: {{epochs: 3, batch_size: 8, eval_every_steps: 25}}
search:
  algorithm: grid
  space: {{optimizer: [adam], lr: [2.0e-4], weight_decay: [0.0]}}
  scheduler: {{name: fifo}}
resources: {{cpus_per_trial: 1}}
""")
    env = {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(tmp / "cache"), "RAY_ADDRESS": ""}
    search = _sweetspot("search", config, env=env, timeout=1200)
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    return {"folder": tmp / "results" / "export", "env": env, "tmp": tmp}


def test_the_exported_winner_loads_with_auto_classes_and_gives_the_trials_validation_p1(searched):
    from transformers import AutoModel, AutoTokenizer

    from sweetspot import layout
    from sweetspot.data.load import batches_from_windows, parquet_windows
    from sweetspot.data.prepare import Prepared
    from sweetspot.export import load
    from sweetspot.trainable import keys, score
    from sweetspot.trainable.loop import evaluate

    folder, out = searched["folder"], searched["tmp"] / "winner"
    done = _sweetspot("export", folder, "--out", out, env=searched["env"], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (trial,) = folder.glob("trial_*")
    rows = layout.parse_result_lines((trial / layout.RESULT_FILE).read_text(), where="result.json")
    best = layout.best_checkpoint(rows)
    assert best[keys.EPOCH] == score.score(rows, budget=3).epoch  # the kept checkpoint is the score's evaluation
    # At most two checkpoints, the best and the latest; optimizer state in the latest only.
    kept = sorted(trial.glob("checkpoint_*"))
    assert best[layout.CHECKPOINT_DIR_KEY] in {p.name for p in kept} and kept[-1].name == rows[-1][layout.CHECKPOINT_DIR_KEY]
    assert 1 <= len(kept) <= 2 and (kept[-1] / "optimizer.pt").is_file()
    assert all(not (p / "optimizer.pt").exists() for p in kept[:-1])

    assert AutoModel.from_pretrained(out).config.hidden_size == 384 and AutoTokenizer.from_pretrained(out)("a text")["input_ids"]
    head = json.loads((out / "sweetspot_head.json").read_text())
    assert (
        head["source"]["checkpoint"] == best[layout.CHECKPOINT_DIR_KEY] and head["problem_type"] == "multi_label_classification"
    )
    prepared = Prepared.load(yaml.safe_load((folder / "sweetspot.yaml").read_text())["prepared_path"])
    names = [r["name"] for r in json.loads((prepared.path / "labels.json").read_text())]
    model, tokenizer = load(out)
    assert model.labels == names and len(names) == prepared.num_labels
    batches = batches_from_windows(
        parquet_windows(prepared.split_dir("validation"), window_rows=64 * 50), batch_size=64, num_labels=prepared.num_labels
    )
    with torch.no_grad():
        got = evaluate(model, batches)
    assert got["val_p1"] == pytest.approx(best["val_p1"], abs=1e-6)


def test_export_refuses_an_unknown_trial_and_a_folder_that_holds_files(searched):
    bad = _sweetspot(
        "export", searched["folder"], "--trial", "nope", "--out", searched["tmp"] / "x", env=searched["env"], timeout=120
    )
    assert bad.returncode == 2 and "no such trial" in bad.stderr and not (searched["tmp"] / "x").exists()
    full = searched["tmp"] / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    refused = _sweetspot("export", searched["folder"], "--out", full, env=searched["env"], timeout=120)
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr and (full / "keep.txt").read_text() == "mine"
