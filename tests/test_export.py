"""`sweetspot export` on a real search: the session's `minilm_search` (MiniLM on a go_emotions slice through
the CLI, 8 configurations, 2 epochs; shared with the report test), then the export of its winner. The folder
loads with transformers' AutoModel and AutoTokenizer, and `sweetspot.export.load` gives the trial's own
validation P@1 at the evaluation of its score (trainable/score.py), from its kept best checkpoint; a
trial holds at most two checkpoints, the latest alone with optimizer state."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests.conftest import sweetspot_subprocess

pytestmark = pytest.mark.e2e


def _sweetspot(*args, env, timeout):
    return sweetspot_subprocess(*map(str, args), env=env, timeout=timeout)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, minilm_search):
    return {"folder": minilm_search["folder"], "env": minilm_search["env"], "tmp": tmp_path_factory.mktemp("export")}


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
    head = json.loads((out / "sweetspot_head.json").read_text())
    trial = folder / layout.trial_folder(head["source"]["trial_id"])
    rows = layout.parse_result_lines((trial / layout.RESULT_FILE).read_text(), where="result.json")
    best = layout.best_checkpoint(rows)
    budget = yaml.safe_load((folder / "sweetspot.yaml").read_text())["train"]["epochs"]
    assert best[keys.EPOCH] == score.score(rows, budget=budget).epoch  # the kept checkpoint is the score's evaluation
    # At most two checkpoints, the best and the latest; optimizer state in the latest only.
    kept = sorted(trial.glob("checkpoint_*"))
    assert best[layout.CHECKPOINT_DIR_KEY] in {p.name for p in kept} and kept[-1].name == rows[-1][layout.CHECKPOINT_DIR_KEY]
    assert 1 <= len(kept) <= 2 and (kept[-1] / "optimizer.pt").is_file()
    assert all(not (p / "optimizer.pt").exists() for p in kept[:-1])

    assert AutoModel.from_pretrained(out).config.hidden_size == 384 and AutoTokenizer.from_pretrained(out)("a text")["input_ids"]
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
