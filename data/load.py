"""Batches for training and evaluation: length bucketing, dynamic padding, multi-hot labels.

Rows arrive in *windows* (a dict of numpy columns holding many batches' worth of rows), either from
a Ray Data dataset (`ray_windows`, what trials use) or straight from the Parquet shards
(`parquet_windows`, for tests and benchmarks without Ray). A training epoch reads the split in one
seeded permutation of all its rows (`epoch_order`: a fresh one per epoch, shared out between
data-parallel workers), and windows are consecutive stretches of that order. Within a window, rows
are sorted by length and cut into batches, and the batches are shuffled: each batch pads only to its
own longest document, while batch order stays random.

Example:
    >>> import numpy as np
    >>> b = collate([np.array([101, 7, 102]), np.array([101, 102])], [np.array([2]), np.array([0, 1])], num_labels=3)
    >>> b["input_ids"].tolist(), b["labels"].tolist()
    ([[101, 7, 102], [101, 102, 0]], [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

Window = dict[str, np.ndarray]  # columns input_ids, label_ids (object arrays of int arrays), length


def collate(
    input_ids: Sequence[np.ndarray], label_ids: Sequence[np.ndarray], num_labels: int, pad_id: int = 0
) -> dict[str, torch.Tensor]:
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
CHUNK_ROWS = 4096  # rows gathered per pass over a split's blocks when reading it in a permuted order
ROW = "row"  # column added on reading: a row's index in the stored split, 0..N-1 (int64)


def epoch_order(num_rows: int, seed: int | Sequence[int], *, rank: int = 0, workers: int = 1) -> np.ndarray:
    """Row indices that worker `rank` of `workers` reads in one epoch: its share of one seeded
    permutation of the whole split.

    The permutation depends on `seed` only (a trial passes `(trial seed, epoch)`, so a resumed
    trial reads the same order for the same epoch), and is the same on every worker. Worker `rank`
    takes every `workers`-th position from `rank` on; the permutation is first extended by wrapping
    around to `ceil(num_rows / workers) * workers` positions, so every worker gets the same number
    of rows, hence of batches (DDP all-reduces every step: a worker with one batch fewer would hang
    the others), at the cost of fewer than `workers` rows read twice. One worker reads every row
    exactly once. Seeds are taken modulo 2**64 (numpy's seeds must be non-negative).

    Example:
        >>> epoch_order(5, (0, 1)).tolist() != epoch_order(5, (0, 2)).tolist()
        True
        >>> [len(epoch_order(5, 3, rank=r, workers=2)) for r in range(2)]
        [3, 3]
    """
    seeds = [int(s) % 2**64 for s in np.atleast_1d(seed)]
    permutation = np.random.default_rng(seeds).permutation(np.arange(num_rows, dtype=np.int32))  # 4 bytes a row
    padded = -(-num_rows // workers) * workers
    if padded > num_rows:
        permutation = np.resize(permutation, padded)  # repeats from the start
    return permutation[rank::workers]


def _ordered_windows(blocks: Callable[[], Iterable[Any]], order: np.ndarray, *, window_rows: int) -> Iterator[Window]:
    """Windows of the rows that `order` names (indices into the split, repeats allowed), in that order.

    `blocks()` yields the split once, as pyarrow tables with a `ROW` column. To keep memory bounded
    (about `CHUNK_ROWS` gathered rows plus one block, whatever the split's size), rows are gathered a
    chunk of whole windows at a time, each chunk one pass over the blocks: an epoch costs
    ceil(len(order) / chunk) passes, each a zero-copy read of every block from Ray's object store.
    """
    import pyarrow as pa

    chunk_rows = max(1, CHUNK_ROWS // window_rows) * window_rows
    for start in range(0, len(order), chunk_rows):
        wanted = order[start : start + chunk_rows]
        pieces, positions = [], []  # rows found in each block, and where they go in `wanted`
        for block in blocks():
            rows = block.column(ROW).to_numpy()
            if not len(rows):
                continue
            by_row = np.argsort(rows)
            found = by_row[np.searchsorted(rows, wanted, sorter=by_row).clip(max=len(rows) - 1)]
            hit = rows[found] == wanted
            pieces.append(block.take(found[hit]))
            positions.append(np.flatnonzero(hit))
        gathered = pa.concat_tables(pieces).take(np.argsort(np.concatenate(positions), kind="stable"))
        if gathered.num_rows != len(wanted):
            raise ValueError(
                f"the epoch order names {len(wanted)} rows of this chunk, the split holds {gathered.num_rows} of them"
            )
        columns = {name: gathered.column(name).to_numpy() for name in gathered.column_names}
        for first in range(0, len(wanted), window_rows):
            yield {name: column[first : first + window_rows] for name, column in columns.items()}


def _parquet_blocks(folder: str | Path) -> Iterator[Any]:
    """A prepared split's rows in stored order, in blocks of at most `BLOCK_ROWS`, with their `ROW` index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = 0
    for file in sorted(Path(folder).glob("*.parquet")):
        for batch in pq.ParquetFile(file).iter_batches(batch_size=BLOCK_ROWS):
            yield pa.Table.from_batches([batch]).append_column(ROW, pa.array(np.arange(first, first + batch.num_rows)))
            first += batch.num_rows


def _start_ray_data_stats_actor() -> None:
    """Starts Ray Data's one-per-cluster stats actor from the driver, before any trial iterates.

    Ray Data creates it on first use. First used inside a trial, it is scheduled in that trial's
    placement group (Tune captures child tasks), and when the trial ends before the actor has
    started, removing the group kills the starting worker, which dumps a raylet "Check failed"
    stack trace into the console. Started here, it belongs to no trial. (Ray Data's own function,
    `get_or_create_stats_actor`, is internal; the project pins Ray to 2.60.x.)
    """
    import ray
    from ray.data._internal.stats import get_or_create_stats_actor

    ray.get(get_or_create_stats_actor().__ray_ready__.remote())


def read_split(folder: str | Path) -> Any:
    """A prepared split as a materialized Ray dataset in blocks of at most `BLOCK_ROWS` rows, with a
    `ROW` column (each row's index in the split, what `epoch_order` permutes).

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

    _start_ray_data_stats_actor()
    blocks = [ray.put(block) for block in _parquet_blocks(folder)]
    if not blocks:  # an empty split keeps its schema
        empty = pq.read_table(sorted(Path(folder).glob("*.parquet"))[0])
        blocks = [ray.put(empty.append_column(ROW, pa.array([], pa.int64())))]
    return ray.data.from_arrow_refs(blocks)


def ray_windows(
    dataset: Any, *, window_rows: int, shuffle_seed: int | None = None, order: np.ndarray | None = None
) -> Iterator[Window]:
    """Streams windows from a Ray Data dataset (or a Ray Train worker's iterator of one) made by `read_split`.

    Without `order` or `shuffle_seed`, rows come in stored order in one pass (evaluation). With
    `order` (row indices, e.g. one worker's share from `epoch_order`), in that order; `shuffle_seed`
    is short for `order=epoch_order(dataset.count(), shuffle_seed)`.
    """
    if shuffle_seed is not None:
        order = epoch_order(dataset.count(), shuffle_seed)
    if order is None:
        yield from dataset.iter_batches(batch_size=window_rows, batch_format="numpy")
        return
    yield from _ordered_windows(
        lambda: dataset.iter_batches(batch_size=None, batch_format="pyarrow"), order, window_rows=window_rows
    )


def parquet_windows(folder: str | Path, *, window_rows: int, shuffle_seed: int | None = None) -> Iterator[Window]:
    """The windows `ray_windows(read_split(folder), ...)` gives, read straight from the split's Parquet
    shards without Ray (tests, benchmarks): stored order, or with a seed that seed's `epoch_order`."""
    import pyarrow.parquet as pq

    num_rows = sum(pq.ParquetFile(file).metadata.num_rows for file in Path(folder).glob("*.parquet"))
    order = np.arange(num_rows) if shuffle_seed is None else epoch_order(num_rows, shuffle_seed)
    return _ordered_windows(lambda: _parquet_blocks(folder), order, window_rows=window_rows)
