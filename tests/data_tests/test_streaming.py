"""Trials read prepared shards through Ray Data: bucketed, dynamically padded batches in bounded
blocks, and an interrupted prepare never leaves a folder that looks complete (sharing between
data-parallel workers: test_order.py)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from sweetspot.data import prepare as prepare_module
from sweetspot.data.config import DataConfig
from sweetspot.data.load import BLOCK_ROWS, batches_from_windows, ray_windows, read_split
from sweetspot.data.prepare import prepare


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, datasets_dir, minilm_path):
    cfg = DataConfig(
        source="go_emotions",
        path=str(datasets_dir / "go_emotions"),
        max_len=48,
        train_limit=600,
        validation_limit=64,
        test_limit=64,
        cache_dir=str(tmp_path_factory.mktemp("cache")),
    )
    return prepare(cfg, tokenizer=minilm_path)


def _token_multiset(batches):
    seen = []
    for b in batches:
        for ids, mask in zip(b["input_ids"], b["attention_mask"]):
            seen.append(tuple(ids[mask.bool()].tolist()))
    return sorted(seen)


def test_ray_data_batches_cover_the_split_once_with_dynamic_padding(ray_local, prepared):
    ds = read_split(prepared.split_dir("train"))
    rows = pq.read_table(prepared.split_dir("train")).to_pylist()
    batches = list(
        batches_from_windows(
            ray_windows(ds, window_rows=160, shuffle_seed=5), batch_size=16, num_labels=prepared.num_labels, shuffle_seed=5
        )
    )
    assert _token_multiset(batches) == sorted(tuple(r["input_ids"]) for r in rows)
    for b in batches:
        assert b["input_ids"].shape[1] == int(b["attention_mask"].sum(1).max())
    real = sum(r["length"] for r in rows)
    processed = sum(b["input_ids"].numel() for b in batches)
    assert real / processed > 0.85
    # Another epoch seed gives another order; the same seed the same order.
    again = [
        b["input_ids"][0, :3].tolist()
        for b in batches_from_windows(
            ray_windows(ds, window_rows=160, shuffle_seed=5), batch_size=16, num_labels=prepared.num_labels, shuffle_seed=5
        )
    ]
    other = [
        b["input_ids"][0, :3].tolist()
        for b in batches_from_windows(
            ray_windows(ds, window_rows=160, shuffle_seed=6), batch_size=16, num_labels=prepared.num_labels, shuffle_seed=6
        )
    ]
    assert again == [b["input_ids"][0, :3].tolist() for b in batches] and other != again


def test_interrupted_prepare_leaves_no_complete_looking_folder(tmp_path, cache_dir, datasets_dir, minilm_path, monkeypatch):
    cfg = DataConfig(
        source="go_emotions", path=str(datasets_dir / "go_emotions"), train_limit=50, validation_limit=20, test_limit=20
    )
    real_tokenize = prepare_module._tokenize

    def interrupted(tokenizer, texts, max_len, desc):
        if desc == "test":  # train and validation are already written when this happens
            raise KeyboardInterrupt
        return real_tokenize(tokenizer, texts, max_len, desc)

    monkeypatch.setattr(prepare_module, "_tokenize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(cfg, tokenizer=minilm_path)
    assert list(cache_dir.iterdir()) == []
    # A leftover temporary folder (as a SIGKILL would leave) is never taken for a prepared dataset.
    (cache_dir / ".tmp-go_emotions-abc-123").mkdir()
    monkeypatch.setattr(prepare_module, "_tokenize", real_tokenize)
    prepared = prepare(cfg, tokenizer=minilm_path)
    assert prepared.path.parent == cache_dir.resolve() and (prepared.path / "manifest.json").is_file()
    assert prepared.manifest["splits"]["test"]["rows"] == 20


def test_read_split_bounds_block_size_so_trial_memory_does_not_grow_with_the_split(ray_local, full_go_emotions):
    ds = read_split(full_go_emotions.split_dir("train"))
    sizes = [len(batch["length"]) for batch in ds.iter_batches(batch_size=None, batch_format="numpy")]  # one batch per block
    assert sum(sizes) == 43_410
    assert max(sizes) <= BLOCK_ROWS and len(sizes) >= 43_410 // BLOCK_ROWS
