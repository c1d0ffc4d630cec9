"""The fine-tuning loop in plain PyTorch: build -> resume -> for each epoch: train, evaluate, report.

No Ray here. `fit` takes batch factories and a `report` callback; `trainable.entry` supplies Ray
Data batches and a callback that checkpoints and calls `tune.report`, tests supply plain ones.
A report happens at the end of every epoch, and every `eval_every_steps` steps when set; a
checkpoint taken mid-epoch resumes mid-epoch (the epoch's batch order is a function of the seed
and the epoch, so the batches already seen are skipped).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sweetspot.trainable import keys, metrics
from sweetspot.trainable.config import TrainConfig

Batch = dict[str, torch.Tensor]  # input_ids [B, T], attention_mask [B, T], labels [B, L] multi-hot


@dataclass
class TrainerState:
    """Progress that a checkpoint must carry besides weights, optimizer and scheduler state."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    loss_sum: float = 0.0  # training loss × documents, over the current epoch so far
    loss_docs: int = 0


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], *, prefix: str = "val", majority_p1: float | None = None,
             train: TrainConfig = TrainConfig(), device: torch.device = torch.device("cpu")) -> dict[str, float]:
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
    if prefix == "val" and majority_p1 is not None:
        out[keys.COLLAPSED] = int(metrics.is_collapsed(
            pred_entropy=out[keys.VAL_PRED_ENTROPY], true_entropy=out[keys.VAL_TRUE_ENTROPY], p1=out[keys.VAL_P1],
            majority_p1=majority_p1, entropy_fraction=train.collapse_entropy_fraction, p1_margin=train.collapse_p1_margin))
    return out


def _diverged_metrics(state: TrainerState) -> dict[str, float]:
    """Finite placeholders, so schedulers and searchers can still rank a diverged trial (last)."""
    out = {keys.EPOCH: state.epoch, keys.STEP: state.step, keys.TRAIN_LOSS: 1e9, keys.VAL_LOSS: 1e9, keys.DIVERGED: 1}
    out.update({f"val_p{k}": 0.0 for k in keys.PRECISION_KS})
    return out


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

    def evaluate_and_report(epoch_value: float, train_loss: float) -> None:
        result = {**(extra_metrics or {}), keys.EPOCH: epoch_value, keys.STEP: state.step,
                  keys.TRAIN_LOSS: train_loss, keys.DIVERGED: 0}
        for prefix, batches in eval_batches.items():
            result.update(evaluate(model, batches(), prefix=prefix, majority_p1=majority_p1, train=train, device=device))
        report(result, state)

    def diverged() -> TrainerState:
        report({**(extra_metrics or {}), **_diverged_metrics(state)}, state)
        return state

    while state.epoch < train.epochs:
        model.train()
        batches = itertools.islice(train_batches(state.epoch), state.batch_in_epoch, None)  # resume mid-epoch
        pending: tuple[torch.Tensor, int] | None = None  # the last step's (loss, documents), not yet read
        for batch in batches:
            batch = _to(batch, device)
            with _autocast(device, train.bf16):
                logits = model(batch["input_ids"], batch["attention_mask"])  # [B, L]
                loss = loss_fn(logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
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
            if train.eval_every_steps and state.step % train.eval_every_steps == 0:
                if not _settle(state, pending):
                    return diverged()
                pending = None
                fraction = state.batch_in_epoch / steps_per_epoch if steps_per_epoch else 0.0
                evaluate_and_report(round(state.epoch + min(fraction, 1.0), 4), state.loss_sum / state.loss_docs)
                model.train()
        if not _settle(state, pending):
            return diverged()
        # The state a checkpoint saves here must say "epoch done", so reset before reporting.
        train_loss = state.loss_sum / max(state.loss_docs, 1)
        state.epoch += 1
        state.batch_in_epoch, state.loss_sum, state.loss_docs = 0, 0.0, 0
        evaluate_and_report(state.epoch, train_loss)
    return state


# ---------------------------------------------------------------------------------------------
# Checkpoints: model.safetensors (weights), optimizer.pt and scheduler.pt (torch.save, loaded
# with weights_only=True), trainer_state.json (progress and RNG states).


def save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainerState) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(scheduler.state_dict(), folder / "scheduler.pt")
    rng = {"torch": torch.get_rng_state().tolist(), "python": _jsonable(random.getstate())}
    if torch.cuda.is_available():
        rng["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    (folder / "trainer_state.json").write_text(json.dumps({**asdict(state), "rng": rng}))


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> TrainerState:
    """Restores weights, optimizer, scheduler and RNG states; returns the progress to resume from."""
    model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(next(model.parameters()).device)))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    saved = json.loads((folder / "trainer_state.json").read_text())
    rng = saved.pop("rng")
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    random.setstate(_tupled(rng["python"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in rng["cuda"]])
    return TrainerState(**saved)


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, tuple) else x


def _tupled(x):
    return tuple(_tupled(v) for v in x) if isinstance(x, list) else x
