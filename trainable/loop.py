"""The fine-tuning loop in plain PyTorch: build -> resume -> for each epoch: train, evaluate, report.

No Ray here. `fit` takes batch factories and a `report` callback; `trainable.entry` supplies Ray
Data batches and a callback that checkpoints and calls `tune.report`, tests supply plain ones.
A report happens at the end of every epoch, and every `eval_every_steps` steps when set (a step
that ends an epoch reports once, as the epoch end); a checkpoint taken mid-epoch resumes mid-epoch (the epoch's batch order is a function of the seed
and the epoch, so the batches already seen are skipped).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from sweetspot.trainable import keys, metrics, score
from sweetspot.trainable.checkpoint import OPTIMIZER_FILE, SCHEDULER_FILE, STATE_FILE, WEIGHTS_FILE, take_snapshot, write_snapshot
from sweetspot.trainable.collapse import is_collapsed_row
from sweetspot.trainable.config import TrainConfig

Batch = dict[str, torch.Tensor]  # input_ids [B, T], attention_mask [B, T], labels [B, L] multi-hot


@dataclass
class TrainerState:
    """Progress that a checkpoint must carry besides weights, optimizer and scheduler state."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    loss_sum: float = 0.0  # training loss × documents, over the current epoch so far
    loss_docs: float = 0  # documents (under DDP, after each report: an equal share of all workers')
    best_value: float | None = None  # the trial's score so far (trainable/score.py), for the keep-best policy
    improvements: int = 0  # how often that score has improved (the last improving report carries this count)


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    prefix: str = "val",
    majority_p1: float | None = None,
    train: TrainConfig = TrainConfig(),
    device: torch.device = torch.device("cpu"),
) -> dict[str, float]:
    """Loss, P@k, nDCG@k, F1 and the collapse signals over all documents of `batches`.

    Keeps the [N, L] scores of the whole split in memory (float32): 3,865 × 3,801 for EURLex-4K's
    test split is 59 MB.
    """
    model.eval()
    scores, targets, embeddings = [], [], []
    kept = 0
    for batch in batches:
        batch = _to(batch, device)
        with _autocast(device, train.bf16):
            pooled = model.embed(batch["input_ids"], batch["attention_mask"])  # [B, H]
            logits = model.head(pooled)  # dropout is the identity in eval mode
        scores.append(logits.float().cpu())
        targets.append(batch["labels"].cpu())
        if kept < train.embed_sample:
            embeddings.append(pooled.float().cpu()[: train.embed_sample - kept])
            kept += embeddings[-1].shape[0]
    s, t = torch.cat(scores), torch.cat(targets)
    # BCEWithLogitsLoss's default mean is over documents × labels; the same unit as train_loss.
    out = {f"{prefix}_loss": float(nn.functional.binary_cross_entropy_with_logits(s, t))}
    for k in keys.PRECISION_KS:
        out[f"{prefix}_p{k}"] = float(metrics.precision_hits(s, t, k).mean())
        out[f"{prefix}_ndcg{k}"] = float(metrics.ndcg_at_k(s, t, k).mean())
    out[f"{prefix}_micro_f1"], out[f"{prefix}_macro_f1"] = metrics.f1_scores(s, t)
    out[f"{prefix}_pred_entropy"] = metrics.pred_entropy(s)
    out[f"{prefix}_true_entropy"] = metrics.true_entropy(t)
    out[f"{prefix}_mean_bernoulli_entropy"] = metrics.mean_bernoulli_entropy(s)
    out[f"{prefix}_distinct_top5"] = metrics.distinct_top5(s)
    out[f"{prefix}_embed_rank"] = metrics.effective_rank(torch.cat(embeddings))
    out[f"{prefix}_top_label"] = metrics.top_label(s)
    out[f"{prefix}_pred_positive"] = metrics.pred_positive(s)
    out[f"{prefix}_top_margin"] = metrics.top_margin(s)
    if prefix == "val" and majority_p1 is not None:
        out[keys.COLLAPSED] = int(
            bool(
                is_collapsed_row(
                    {**out, keys.MAJORITY_P1: majority_p1},
                    entropy_fraction=train.collapse_entropy_fraction,
                    p1_margin=train.collapse_p1_margin,
                )
            )
        )
    return out


DIVERGED_LOSS = 1e9  # finite stand-in for a NaN or inf loss


def _diverged_metrics(state: TrainerState, prefixes: Iterable[str], *, collapse_flag: bool) -> dict[str, float]:
    """Finite worst-case placeholders under every key a healthy report carries (`keys.REPORTED`'s
    val_* for each evaluated prefix), so that a scheduler or searcher on any of them
    (`val_macro_f1`, `test_p1`, ...) ranks a diverged trial last instead of failing on a missing
    metric. Losses are `DIVERGED_LOSS`; scores and collapse signals 0; the top label -1 (none);
    `collapsed` 0: the trial is reported as diverged, not collapsed."""
    out = {
        keys.EPOCH: state.epoch,
        keys.STEP: state.step,
        keys.TRAIN_LOSS: DIVERGED_LOSS,
        keys.DIVERGED: 1,
        keys.TRAIN_LOSS_RECENT: DIVERGED_LOSS,
        keys.GRAD_NORM: DIVERGED_LOSS,
        keys.IMPROVEMENT: 0,
    }
    for prefix in prefixes:
        for key in keys.REPORTED:
            if key.startswith("val_"):
                worst = DIVERGED_LOSS if key.endswith("_loss") else -1 if key == keys.VAL_TOP_LABEL else 0.0
                out[prefix + key.removeprefix("val")] = worst
    if collapse_flag:
        out[keys.COLLAPSED] = 0
    return out


def _improvement(state: TrainerState, result: dict[str, float], train: TrainConfig) -> int:
    """`keys.IMPROVEMENT` of this report: the count of the trial's score improvements when this
    evaluation improves it, else 0. The score is trainable/score.py's (an epoch-end evaluation that
    `score.counts`, compared by value; ties keep the earlier one), so the report with the highest count
    is the one whose checkpoint a keep-best policy keeps. Updates `state`, which checkpoints carry."""
    if not (score.is_epoch_end(result) and score.counts(result, entropy_fraction=train.collapse_entropy_fraction)):
        return 0
    value = float(result[keys.VAL_P1])
    if state.best_value is not None and not value > state.best_value:
        return 0
    state.best_value, state.improvements = value, state.improvements + 1
    return state.improvements


def _train_loss(state: TrainerState, device: torch.device) -> float:
    """Mean training loss over the documents of the epoch so far: all workers' under DDP.

    Each DDP worker has summed its own shard only. The sums are pooled over the workers, and each
    keeps an equal share of the pooled totals, so that the next pooling, or a resume in which every
    worker loads rank 0's checkpoint, still adds up to all workers' documents.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        totals = torch.tensor([state.loss_sum, state.loss_docs], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(totals)  # sum over workers
        state.loss_sum, state.loss_docs = (totals / torch.distributed.get_world_size()).tolist()
    return state.loss_sum / state.loss_docs if state.loss_docs else 0.0


def _flag_last(items: Iterable[Any]) -> Iterable[tuple[Any, bool]]:
    """Yields (item, is_last), reading one item ahead (batch iterators have no length)."""
    it = iter(items)
    current = next(it, _END)
    while current is not _END:
        following = next(it, _END)
        yield current, following is _END
        current = following


_END = object()


def _settle(state: TrainerState, pending: tuple[torch.Tensor, int] | None) -> bool:
    """Adds a finished step's mean loss × documents to the epoch's sum; False when it is not finite."""
    if pending is None:
        return True
    loss, docs = pending
    value = loss.item()
    if not math.isfinite(value):
        return False
    state.loss_sum += value * docs
    state.loss_docs += docs
    return True


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    train: TrainConfig,
    state: TrainerState,
    train_batches: Callable[[int], Iterable[Batch]],
    eval_batches: dict[str, Callable[[], Iterable[Batch]]],
    report: Callable[[dict[str, float], TrainerState], None],
    majority_p1: float | None = None,
    extra_metrics: dict[str, Any] | None = None,
    device: torch.device = torch.device("cpu"),
    steps_per_epoch: int | None = None,
) -> TrainerState:
    """Trains from `state` to `train.epochs`, calling `report(metrics, state)` after each epoch
    (and every `train.eval_every_steps` steps). `eval_batches` maps a metric prefix (`val`,
    `test`) to a factory of that split's batches.

    A non-finite training loss ends training one step later with one last report carrying
    `diverged=1`.
    """
    loss_fn = nn.BCEWithLogitsLoss()
    with_collapse = "val" in eval_batches and majority_p1 is not None  # when `evaluate` flags `collapsed`

    # Since the previous report (this process's steps; under DDP, this worker's shard): summed on
    # the device, read once per report, so no step waits for the host.
    recent = {"loss": torch.zeros((), device=device), "grad_norm": torch.zeros((), device=device), "steps": 0}

    def evaluate_and_report(epoch_value: float, train_loss: float) -> None:
        steps = max(recent["steps"], 1)
        result = {
            **(extra_metrics or {}),
            keys.EPOCH: epoch_value,
            keys.STEP: state.step,
            keys.TRAIN_LOSS: train_loss,
            keys.DIVERGED: 0,
            keys.TRAIN_LOSS_RECENT: float(recent["loss"]) / steps,
            keys.GRAD_NORM: float(recent["grad_norm"]) / steps,
        }
        recent.update(loss=torch.zeros((), device=device), grad_norm=torch.zeros((), device=device), steps=0)
        for prefix, batches in eval_batches.items():
            result.update(evaluate(model, batches(), prefix=prefix, majority_p1=majority_p1, train=train, device=device))
        result[keys.IMPROVEMENT] = _improvement(state, result, train)
        report(result, state)

    def diverged() -> TrainerState:
        report({**(extra_metrics or {}), **_diverged_metrics(state, eval_batches, collapse_flag=with_collapse)}, state)
        return state

    while state.epoch < train.epochs:
        model.train()
        batches = itertools.islice(train_batches(state.epoch), state.batch_in_epoch, None)  # resume mid-epoch
        pending: tuple[torch.Tensor, int] | None = None  # the last step's (loss, documents), not yet read
        for batch, last_of_epoch in _flag_last(batches):
            batch = _to(batch, device)
            with _autocast(device, train.bf16):
                logits = model(batch["input_ids"], batch["attention_mask"])  # [B, L]
                loss = loss_fn(logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train.grad_clip is not None:
                grad_norm = nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)  # the norm before clipping
            else:
                grad_norm = nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
            recent["loss"] += loss.detach().float()
            recent["grad_norm"] += grad_norm.detach().float()
            recent["steps"] += 1
            optimizer.step()
            scheduler.step()
            # Reading a loss on the host waits for the GPU. Read the previous step's, whose kernels have
            # run by now, while this step's are still queued: the GPU never idles waiting for the host
            # to build the next batch. A non-finite loss is so caught one step late.
            if not _settle(state, pending):
                return diverged()
            pending = (loss.detach(), batch["labels"].shape[0])
            state.step += 1
            state.batch_in_epoch += 1
            # The epoch's last step is evaluated once, by the epoch-end report below.
            if train.eval_every_steps and state.step % train.eval_every_steps == 0 and not last_of_epoch:
                if not _settle(state, pending):
                    return diverged()
                pending = None
                # steps_per_epoch is an estimate (ceil(N / batch)): never let it claim the whole epoch.
                fraction = state.batch_in_epoch / steps_per_epoch if steps_per_epoch else 0.0
                evaluate_and_report(round(state.epoch + min(fraction, 0.9999), 4), _train_loss(state, device))
                model.train()
        if not _settle(state, pending):
            return diverged()
        # The state a checkpoint saves here must say "epoch done", so reset before reporting.
        train_loss = _train_loss(state, device)
        state.epoch += 1
        state.batch_in_epoch, state.loss_sum, state.loss_docs = 0, 0.0, 0
        evaluate_and_report(state.epoch, train_loss)
    return state


# ---------------------------------------------------------------------------------------------
# Checkpoints: trainable/checkpoint.py writes them (a snapshot off the device, then the files).


def save_checkpoint(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainerState
) -> None:
    """Writes a checkpoint now, in this thread (the trials write theirs in the background)."""
    write_snapshot(folder, take_snapshot(model, optimizer, scheduler, state))


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> TrainerState:
    """Restores weights, optimizer, scheduler and RNG states; returns the progress to resume from."""
    if not (folder / OPTIMIZER_FILE).is_file():
        raise FileNotFoundError(
            f"{folder}: no {OPTIMIZER_FILE}: only a trial's latest checkpoint keeps its optimizer "
            "state, and only that one resumes"
        )
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE), device=str(next(model.parameters()).device)))
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))
    scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True))
    saved = json.loads((folder / STATE_FILE).read_text())
    saved.pop("files", None)
    rng = saved.pop("rng")
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    random.setstate(_tupled(rng["python"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in rng["cuda"]])
    return TrainerState(**saved)


def _tupled(x):
    return tuple(_tupled(v) for v in x) if isinstance(x, list) else x
