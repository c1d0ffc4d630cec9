"""A trial's checkpoint, taken off the training step: a snapshot, then a write in the background.

A checkpoint folder holds `model.safetensors` (weights), `optimizer.pt` and `scheduler.pt`
(`torch.save`, loaded with weights_only=True) and `trainer_state.json` (progress, RNG states, and
`files`: every file's size, written last, so a reader can tell a complete folder from a torn copy).

`take_snapshot` copies the weights and the optimizer's state off the device (into host buffers
that the next snapshot reuses: no allocation, no page faults, pinned on CUDA) and reads the RNG
states, in the training thread: the training step may change them right after. `write_snapshot`
writes a snapshot's files. `BackgroundWriter` runs the writes, and then the report that registers
the checkpoint, in one thread, in order: the training loop waits only for the copy, and a report
happens only after its folder is complete. A write still in flight when the next checkpoint is
taken is waited for (the snapshot buffers are in use; no report is skipped), and that wait is
counted. An error in the thread is raised in the training thread at its next checkpoint or at
`close`.

Why not torch.distributed.checkpoint's `async_save`: it stages to CPU the same way, but writes
its own sharded format (`.distcp` files and a metadata pickle) rather than the safetensors the
resume path, the analysis's figures and `sweetspot export` read, and it would not order Tune's
report after the write: the report would still have to wait on its future.
"""

from __future__ import annotations

import json
import queue
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
STATE_FILE = "trainer_state.json"


@dataclass
class Snapshot:
    """Everything a checkpoint holds, on the host, independent of the live model and optimizer."""

    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    state: dict[str, Any]  # the TrainerState's fields
    rng: dict[str, Any]


def _copy_tree(value: Any, into: Any, pinned: bool) -> Any:
    """`value` (a state dict: nested dicts and lists of tensors and plain values) with every tensor
    copied to the host, into the matching tensor of `into` (the previous snapshot's) when there is one."""
    if isinstance(value, torch.Tensor):
        src = value.detach()
        if isinstance(into, torch.Tensor) and into.shape == src.shape and into.dtype == src.dtype:
            return into.copy_(src, non_blocking=pinned)
        if src.device.type == "cpu":
            return src.clone(memory_format=torch.contiguous_format)
        return torch.empty(src.shape, dtype=src.dtype, pin_memory=pinned).copy_(src, non_blocking=pinned)
    if isinstance(value, dict):
        previous = into if isinstance(into, dict) else {}
        return {k: _copy_tree(v, previous.get(k), pinned) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        previous = into if isinstance(into, (list, tuple)) and len(into) == len(value) else [None] * len(value)
        return type(value)(_copy_tree(v, p, pinned) for v, p in zip(value, previous))
    return value


def take_snapshot(
    model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: Any, reuse: Snapshot | None = None
) -> Snapshot:
    """The checkpoint's content copied off the device now. `reuse`: a previous snapshot whose
    buffers are free (its write has finished) to copy into."""
    pinned = torch.cuda.is_available() and any(p.is_cuda for p in model.parameters())
    weights = _copy_tree(model.state_dict(), reuse.weights if reuse else None, pinned)
    optim = _copy_tree(optimizer.state_dict(), reuse.optimizer if reuse else None, pinned)
    if pinned:
        torch.cuda.synchronize()  # the non-blocking copies have landed before the buffers are read
    rng = {"torch": torch.get_rng_state().tolist(), "python": _jsonable(random.getstate())}
    if torch.cuda.is_available():
        rng["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return Snapshot(
        weights=weights, optimizer=optim, scheduler=_copy_tree(scheduler.state_dict(), None, False), state=asdict(state), rng=rng
    )


def write_snapshot(folder: Path, snap: Snapshot) -> None:
    """Writes the checkpoint's files into `folder`, `trainer_state.json` (with every file's size) last."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in snap.weights.items()}, str(folder / WEIGHTS_FILE))
    torch.save(snap.optimizer, folder / OPTIMIZER_FILE)
    torch.save(snap.scheduler, folder / SCHEDULER_FILE)
    files = {name: (folder / name).stat().st_size for name in (WEIGHTS_FILE, OPTIMIZER_FILE, SCHEDULER_FILE)}
    (folder / STATE_FILE).write_text(json.dumps({**snap.state, "rng": snap.rng, "files": files}))


def is_complete(files: dict[str, int], sizes: dict[str, int]) -> bool:
    """A checkpoint folder is complete when every file its `trainer_state.json` lists (`files`) is
    there (`sizes`: the folder's files and their sizes) at its size. A folder whose optimizer state
    was removed (it is no longer the latest, search/checkpoints.py) lists it no more.

    Example:
        >>> is_complete({"model.safetensors": 10, "optimizer.pt": 20}, {"model.safetensors": 10, "optimizer.pt": 7})
        False
    """
    return all(sizes.get(name) == size for name, size in files.items())


@dataclass
class WriterStats:
    """Seconds per checkpoint: how long the training loop waited (`waits`: the snapshot, and any
    write still in flight), how long the write itself took (`writes`: the files, then the report)."""

    waits: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    close_wait: float = 0.0  # the end of training waiting for the last write


class BackgroundWriter:
    """Writes checkpoints and makes their reports in one background thread (module docstring).

    `publish(metrics, folder)` is called in that thread once `folder` is complete (Tune:
    `tune.report(metrics, checkpoint=Checkpoint.from_directory(folder))`); the folder is deleted
    after it returns. `checkpoint=False` for a report: `publish(metrics, None)`, in order with the rest.
    """

    def __init__(self, publish: Callable[[dict[str, Any], Path | None], None]):
        self._publish = publish
        self._jobs: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._buffers: Snapshot | None = None
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name="sweetspot-checkpoint", daemon=True)
        self._thread.start()

    def report(
        self,
        metrics: dict[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        state: Any,
        *,
        checkpoint: bool = True,
    ) -> None:
        """Called by the training loop: waits for a write in flight, snapshots, queues the write."""
        start = time.perf_counter()
        self._idle.wait()
        self.raise_error()
        if not self._thread.is_alive():
            raise RuntimeError("the checkpoint writer has stopped")
        snap = take_snapshot(model, optimizer, scheduler, state, reuse=self._buffers) if checkpoint else None
        self._buffers = snap or self._buffers
        self._idle.clear()
        self._jobs.put((dict(metrics), snap))
        self.stats.waits.append(time.perf_counter() - start)

    def raise_error(self) -> None:
        """Raises, in the caller's thread, what the writer thread raised (once)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def failed(self) -> bool:
        """The writer thread has stopped on an error (or on Tune's stop) not yet raised."""
        return self._error is not None

    def close(self, *, raise_error: bool = True) -> None:
        """Waits for every queued write and report; raises a writer error (unless `raise_error` is False)."""
        start = time.perf_counter()
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self.stats.close_wait = time.perf_counter() - start
        if raise_error:
            self.raise_error()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            metrics, snap = job
            try:
                start = time.perf_counter()
                if snap is None:
                    self._publish(metrics, None)
                else:
                    with tempfile.TemporaryDirectory(prefix="sweetspot-checkpoint-") as folder:
                        write_snapshot(Path(folder), snap)
                        self._publish(metrics, Path(folder))
                self.stats.writes.append(time.perf_counter() - start)
            except BaseException as e:  # SystemExit too: Tune stops a trial by raising it in the reporting thread
                self._error = e
                self._idle.set()
                return
            self._idle.set()


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, tuple) else x
