"""Row order is i.i.d. whatever the source's order: a source sorted by label gives mixed subsamples,
carve-outs and stored splits."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq

from sweetspot.data.config import DataConfig
from sweetspot.data.prepare import prepare


def _label_share(labels) -> float:
    return float(np.mean([label == "a" for label in labels]))


def test_label_sorted_source_gives_mixed_subsample_carve_outs_and_stored_order(tmp_path, cache_dir, minilm_path):
    folder = tmp_path / "sorted"
    folder.mkdir()
    for name, rows in (("train.jsonl", 1000), ("test.jsonl", 400)):  # first half all "a", second half all "b"
        docs = [{"text": f"document number {i}", "labels": ["a" if i < rows // 2 else "b"]} for i in range(rows)]
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepared = prepare(DataConfig(source="jsonl", path=str(folder), validation_fraction=0.2, train_limit=400,
                                  test_limit=200, seed=7), tokenizer=minilm_path)
    names = [label["name"] for label in json.loads((prepared.path / "labels.json").read_text())]
    for split, rows in (("train", 400), ("validation", 200), ("test", 200)):
        stored = [names[r["label_ids"][0]] for r in pq.read_table(prepared.split_dir(split)).to_pylist()]
        assert len(stored) == rows
        # A random draw: both labels in about the source's proportion (binomial sd 0.025-0.035) ...
        assert 0.4 < _label_share(stored) < 0.6, split
        # ... and stored in a random order: the first quarter mixes them too (sd 0.05-0.07).
        assert 0.3 < _label_share(stored[: rows // 4]) < 0.7, split
