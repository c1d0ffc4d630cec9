"""Row order is i.i.d. whatever the source's order: a source sorted by label gives mixed subsamples,
carve-outs and stored splits, and every training epoch reads one seeded permutation of the whole
split (shared out equally between data-parallel workers), through Ray Data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweetspot.data.config import DataConfig
from sweetspot.data.load import BLOCK_ROWS, epoch_order, ray_windows, read_split
from sweetspot.data.prepare import SCHEMA, prepare
from sweetspot.trainable.config import ModelConfig, TrainConfig
from sweetspot.trainable.entry import TrialSettings, _batch_factories

ROWS = 10_000  # three Ray blocks of at most BLOCK_ROWS, and several gathering passes per epoch
WINDOW = 160  # 10 batches of 16
FIRST_ID = 5000  # row i of the sorted split is the document [101, FIRST_ID + i, ..., 102]


@pytest.fixture(scope="module")
def sorted_split(tmp_path_factory):
    """A prepared-layout split sorted by label: rows 0..4999 have label 0, rows 5000..9999 label 1,
    with lengths 3..9 cycling so that length bucketing has something to sort."""
    folder = tmp_path_factory.mktemp("sorted") / "train"
    folder.mkdir()
    ids = [[101] + [FIRST_ID + i] * (1 + i % 7) + [102] for i in range(ROWS)]
    table = pa.table(
        {"input_ids": ids, "label_ids": [[int(i >= ROWS // 2)] for i in range(ROWS)], "length": [len(x) for x in ids]},
        schema=SCHEMA,
    )
    pq.write_table(table, folder / "part-00000.parquet")
    assert ROWS > 2 * BLOCK_ROWS
    return folder


def _rows(windows) -> list[int]:
    """The stored row index of every row the windows hold, in order (from its token ids)."""
    return [int(ids[1]) - FIRST_ID for window in windows for ids in window["input_ids"]]


def _epoch(ds, seed, epoch, rank=0, workers=1) -> list[int]:
    return _rows(ray_windows(ds, window_rows=WINDOW, order=epoch_order(ROWS, (seed, epoch), rank=rank, workers=workers)))


def _trial_epoch(ds, seed, epoch) -> list[dict]:
    """The batches a one-worker trial with `seed` trains on in `epoch` (as `trainable.entry` builds them)."""
    settings = TrialSettings(
        model=ModelConfig(),
        train=TrainConfig(batch_size=16, bucket_window=WINDOW // 16),
        num_labels=2,
        num_train=ROWS,
        pad_id=0,
        majority_p1=0.5,
        prior_bce=0.69,
        threads=1,
    )
    train_batches, _ = _batch_factories(settings, seed, ds, {})
    return list(train_batches(epoch))


def _batch_rows(batches) -> list[int]:
    return [int(ids[1]) - FIRST_ID for b in batches for ids in b["input_ids"]]


def _label_share(labels) -> float:
    return float(np.mean([label == "a" for label in labels]))


def test_label_sorted_source_gives_mixed_subsample_carve_outs_and_stored_order(tmp_path, cache_dir, minilm_path):
    folder = tmp_path / "sorted"
    folder.mkdir()
    for name, rows in (("train.jsonl", 1000), ("test.jsonl", 400)):  # first half all "a", second half all "b"
        docs = [{"text": f"document number {i}", "labels": ["a" if i < rows // 2 else "b"]} for i in range(rows)]
        (folder / name).write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepared = prepare(
        DataConfig(source="jsonl", path=str(folder), validation_fraction=0.2, train_limit=400, test_limit=200, seed=7),
        tokenizer=minilm_path,
    )
    names = [label["name"] for label in json.loads((prepared.path / "labels.json").read_text())]
    for split, rows in (("train", 400), ("validation", 200), ("test", 200)):
        stored = [names[r["label_ids"][0]] for r in pq.read_table(prepared.split_dir(split)).to_pylist()]
        assert len(stored) == rows
        # A random draw: both labels in about the source's proportion (binomial sd 0.025-0.035) ...
        assert 0.4 < _label_share(stored) < 0.6, split
        # ... and stored in a random order: the first quarter mixes them too (sd 0.05-0.07).
        assert 0.3 < _label_share(stored[: rows // 4]) < 0.7, split


def test_an_epoch_reads_every_row_once_in_a_seeded_permutation_of_the_whole_split(ray_local, sorted_split):
    ds = read_split(sorted_split)
    first = _rows(ray_windows(ds, window_rows=WINDOW, shuffle_seed=3))
    assert sorted(first) == list(range(ROWS))  # each row exactly once
    assert _rows(ray_windows(ds, window_rows=WINDOW, shuffle_seed=3)) == first
    assert _rows(ray_windows(ds, window_rows=WINDOW, shuffle_seed=4)) != first
    # A permutation of the whole split, not of blocks or of a bounded buffer: the first window alone
    # draws from every fifth of the stored order (expected 32 rows each; a block-local order has 0).
    fifths = np.bincount(np.array(first[:WINDOW]) * 5 // ROWS, minlength=5)
    assert fifths.min() >= 12, fifths


def test_a_trials_epochs_mix_a_label_sorted_split_from_the_first_batches_on(ray_local, sorted_split):
    ds = read_split(sorted_split)
    epoch0 = _trial_epoch(ds, seed=1, epoch=0)
    share = float(np.mean([float(b["labels"][:, 0].mean()) for b in epoch0[:4]]))  # label 0: the first half
    assert 0.25 < share < 0.75, share
    assert sorted(_batch_rows(epoch0)) == list(range(ROWS))
    assert _batch_rows(_trial_epoch(ds, seed=1, epoch=0)) == _batch_rows(epoch0)  # what a resumed trial reads
    assert _batch_rows(_trial_epoch(ds, seed=1, epoch=1)) != _batch_rows(epoch0)
    # Still length-bucketed: each batch pads to its own longest document, and padding stays small.
    real = sum(int(b["attention_mask"].sum()) for b in epoch0)
    assert real / sum(b["input_ids"].numel() for b in epoch0) > 0.9


@pytest.mark.parametrize("workers", [2, 3])
def test_data_parallel_workers_read_equal_disjoint_shares_of_one_permutation(ray_local, sorted_split, workers):
    ds = read_split(sorted_split)
    # Each worker iterates the whole dataset as a Ray Train worker does (`get_dataset_shard` of a
    # dataset not split by Ray is `ds.iterator()`) and keeps its own share of the epoch's order.
    shares = [_epoch(ds.iterator(), seed=5, epoch=2, rank=r, workers=workers) for r in range(workers)]
    per_worker = -(-ROWS // workers)
    assert [len(s) for s in shares] == [per_worker] * workers  # the same number of batches: DDP cannot hang
    # Interleaved back, the shares are the one-worker permutation, wrapped round by the padding rows.
    interleaved = [row for step in zip(*shares) for row in step]
    whole = _epoch(ds, seed=5, epoch=2)
    assert interleaved == (whole + whole)[: per_worker * workers]
    seen = np.bincount(interleaved, minlength=ROWS)
    assert seen.min() == 1 and seen.sum() - ROWS == per_worker * workers - ROWS  # only padding is read twice
