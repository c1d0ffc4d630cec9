"""Batches for training and evaluation: length bucketing, dynamic padding, multi-hot labels.

Rows arrive in *windows* (a dict of numpy columns holding many batches' worth of rows), either from
a Ray Data dataset (`ray_windows`, what trials use) or straight from the Parquet shards
(`parquet_windows`, for tests and benchmarks without Ray). Within a window, rows are sorted by
length and cut into batches, and the batches are shuffled: each batch pads only to its own longest
document, while batch order stays random.

Example:
    >>> import numpy as np
    >>> b = collate([np.array([101, 7, 102]), np.array([101, 102])], [np.array([2]), np.array([0, 1])], num_labels=3)
    >>> b["input_ids"].tolist(), b["labels"].tolist()
    ([[101, 7, 102], [101, 102, 0]], [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

Window = dict[str, np.ndarray]  # columns input_ids, label_ids (object arrays of int arrays), length


def collate(input_ids: Sequence[np.ndarray], label_ids: Sequence[np.ndarray], num_labels: int, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pads to the longest document of the batch and builds multi-hot float labels [B, L]."""
    batch, longest = len(input_ids), max(len(x) for x in input_ids)
    ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, longest), dtype=torch.long)
    labels = torch.zeros((batch, num_labels), dtype=torch.float32)
    for i, (tokens, targets) in enumerate(zip(input_ids, label_ids)):
        ids[i, : len(tokens)] = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
        mask[i, : len(tokens)] = 1
        labels[i, torch.as_tensor(np.asarray(targets, dtype=np.int64))] = 1.0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batches_from_windows(
    windows: Iterable[Window], *, batch_size: int, num_labels: int, pad_id: int = 0, shuffle_seed: int | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Sorts each window by length, cuts it into batches and (with a seed) shuffles them."""
    rng = random.Random(shuffle_seed)
    for window in windows:
        order = np.argsort(window["length"], kind="stable")
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if shuffle_seed is not None:
            rng.shuffle(chunks)
        for rows in chunks:
            yield collate(window["input_ids"][rows], window["label_ids"][rows], num_labels, pad_id)


BLOCK_ROWS = 4096  # rows per Ray Data block: what a trial holds at a time, whatever the split's size


def read_split(folder: str | Path) -> Any:
    """A prepared split as a materialized Ray dataset in blocks of at most `BLOCK_ROWS` rows.

    Read here, in the driver, and put into the object store from here; every trial is then handed
    the same dataset (a lazy `read_parquet` iterated inside trials competes with them for the CPUs
    and can hang a small machine). Not `ray.data.read_parquet` either: its read tasks run on
    whichever node has a free CPU, while the prepared shards exist on the driver's disk only (a
    cluster head started with `--num-cpus=0` has no CPU at all). Bounded blocks keep a trial's
    memory flat as the dataset grows: iteration pulls one block at a time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    files = sorted(Path(folder).glob("*.parquet"))
    blocks = [ray.put(pa.Table.from_batches([batch])) for file in files
              for batch in pq.ParquetFile(file).iter_batches(batch_size=BLOCK_ROWS)]
    return ray.data.from_arrow_refs(blocks or [ray.put(pq.read_table(files[0]))])  # an empty split keeps its schema


def ray_windows(dataset: Any, *, window_rows: int, shuffle_seed: int | None = None) -> Iterator[Window]:
    """Streams windows from a Ray Data dataset; with a seed, rows are shuffled locally first."""
    yield from dataset.iter_batches(
        batch_size=window_rows,
        batch_format="numpy",
        local_shuffle_buffer_size=window_rows if shuffle_seed is not None else None,
        local_shuffle_seed=shuffle_seed,
    )


def parquet_windows(folder: str | Path, *, window_rows: int, shuffle_seed: int | None = None) -> Iterator[Window]:
    """Streams windows from a split's Parquet shards without Ray (tests, benchmarks).

    With a seed, row groups are read in a random order and rows shuffled within each window.
    """
    import pyarrow.parquet as pq

    rng = np.random.default_rng(shuffle_seed)
    files = sorted(Path(folder).glob("*.parquet"))
    if shuffle_seed is not None:
        rng.shuffle(files)
    for path in files:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=window_rows):
            window = {name: record_batch.column(name).to_numpy(zero_copy_only=False) for name in record_batch.schema.names}
            if shuffle_seed is not None:
                perm = rng.permutation(len(window["length"]))
                window = {k: v[perm] for k, v in window.items()}
            yield window
