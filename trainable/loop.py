"""The fine-tuning loop in plain PyTorch: build -> resume -> for each epoch: train, evaluate, report.

No Ray here. `fit` takes batch factories and a `report` callback; `trainable.entry` supplies Ray
Data batches and a callback that checkpoints and calls `tune.report`, tests supply plain ones.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from trainable import keys
from trainable.metrics import precision_hits

Batch = dict[str, torch.Tensor]  # input_ids [B, T], attention_mask [B, T], labels [B, L] multi-hot


@dataclass
class TrainerState:
    """Progress that a checkpoint must carry besides weights and optimizer state."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Batch], state: TrainerState) -> float:
    """One pass over the training batches; returns the document-weighted mean loss (NaN if any
    step's loss was not finite, after which the epoch stops)."""
    model.train()
    loss_fn = nn.BCEWithLogitsLoss()
    total, docs = 0.0, 0
    for batch in batches:
        logits = model(batch["input_ids"], batch["attention_mask"])  # [B, L]
        loss = loss_fn(logits, batch["labels"])
        if not torch.isfinite(loss):
            return math.nan
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.step += 1
        n = batch["labels"].shape[0]
        total += loss.item() * n
        docs += n
    return total / max(docs, 1)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], prefix: str = "val") -> dict[str, float]:
    """Mean BCE loss and P@k over all documents of `batches`."""
    model.eval()
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    loss_sum, docs, labels = 0.0, 0, 0
    hits = {k: 0.0 for k in keys.PRECISION_KS}
    for batch in batches:
        logits = model(batch["input_ids"], batch["attention_mask"])
        loss_sum += loss_fn(logits, batch["labels"]).item()
        docs += logits.shape[0]
        labels = logits.shape[1]
        for k in keys.PRECISION_KS:
            hits[k] += precision_hits(logits, batch["labels"], k).sum().item()
    docs = max(docs, 1)
    # BCEWithLogitsLoss's default mean is over documents × labels; keep that unit for val too.
    result = {f"{prefix}_loss": loss_sum / (docs * max(labels, 1))}
    result.update({f"{prefix}_p{k}": hits[k] / docs for k in keys.PRECISION_KS})
    return result


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    state: TrainerState,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Callable[[], Iterable[Batch]],
    report: Callable[[dict[str, float], TrainerState], None],
    extra_metrics: dict[str, float] | None = None,
) -> TrainerState:
    """Trains from `state.epoch` to `epochs`, calling `report(metrics, state)` after each epoch.

    A non-finite training loss ends training at once with one last report carrying
    `diverged=1` and finite placeholder values (so schedulers and searchers can still sort it).
    """
    while state.epoch < epochs:
        train_loss = train_epoch(model, optimizer, train_batches(state.epoch), state)
        state.epoch += 1
        if math.isnan(train_loss):
            metrics = {keys.EPOCH: state.epoch, keys.TRAIN_LOSS: 1e9, keys.VAL_LOSS: 1e9, keys.DIVERGED: 1}
            metrics.update({f"val_p{k}": 0.0 for k in keys.PRECISION_KS})
            report({**(extra_metrics or {}), **metrics}, state)
            break
        metrics = {keys.EPOCH: state.epoch, keys.TRAIN_LOSS: train_loss, **evaluate(model, val_batches()), keys.DIVERGED: 0}
        report({**(extra_metrics or {}), **metrics}, state)
    return state


# ---------------------------------------------------------------------------------------------
# Checkpoints: model.safetensors (weights), optimizer.pt (torch.save, loaded weights_only),
# trainer_state.json (epoch, step, RNG states).


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: TrainerState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    rng = {"torch": torch.get_rng_state().tolist(), "python": _jsonable(random.getstate())}
    (folder / "trainer_state.json").write_text(json.dumps({**asdict(state), "rng": rng}))


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> TrainerState:
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    saved = json.loads((folder / "trainer_state.json").read_text())
    torch.set_rng_state(torch.tensor(saved["rng"]["torch"], dtype=torch.uint8))
    random.setstate(_tupled(saved["rng"]["python"]))
    return TrainerState(epoch=saved["epoch"], step=saved["step"])


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, tuple) else x


def _tupled(x):
    return tuple(_tupled(v) for v in x) if isinstance(x, list) else x
