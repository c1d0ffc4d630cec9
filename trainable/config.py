"""Typed settings of one fine-tuning trial: fixed ones (`ModelConfig`, `TrainConfig`) from the
experiment file, searched ones (`TrialParams`) from the Tune trial's config dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelConfig:
    """The encoder and its classification head.

    Attributes:
        name: A registered name (`minilm-l6`, `tiny-distilbert`), a hub id such as
            `distilbert-base-uncased`, or a local folder with a Hugging Face encoder.
        dropout: Dropout rate between the pooled embedding and the linear head.
        pooling: `cls` (the [CLS] token's last hidden state, as the study) or `mean`.
    """

    name: str = "minilm-l6"
    dropout: float = 0.1
    pooling: str = "cls"


@dataclass(frozen=True)
class TrainConfig:
    """Settings every trial shares.

    Attributes:
        epochs: Training epochs; the trial reports once per epoch, so ASHA's max_t equals this.
        batch_size: Training documents per step.
        eval_batch_size: Documents per forward pass when evaluating.
        optimizer: Optimizer used when the search space does not choose one.
        lr: Learning rate used when the search space does not choose one (`None`: the optimizer's
            default from `trainable.optimizers.OPTIMIZERS`).
        weight_decay: Weight decay used when the search space does not choose one. Always explicit.
        seed: Seed of model initialisation and batch order, unless the search sets `seed`.
        bucket_window: Length bucketing: documents are sorted by length within windows of this
            many batches, then the batches are shuffled, so padding stays small.
        threads: torch threads per trial; `None` means the trial's CPUs.
    """

    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    optimizer: str = "adam"
    lr: float | None = None
    weight_decay: float = 0.0
    seed: int = 0
    bucket_window: int = 50
    threads: int | None = None


@dataclass(frozen=True)
class TrialParams:
    """What the search chooses for one trial (the flat keys of Tune's trial config)."""

    optimizer: str
    lr: float
    weight_decay: float
    seed: int

    @classmethod
    def from_trial_config(cls, config: Mapping[str, Any], train: TrainConfig) -> "TrialParams":
        """Reads Tune's flat trial config once, falling back to the fixed `train` settings."""
        from trainable.optimizers import default_lr  # local: keeps this module torch-free

        optimizer = str(config.get("optimizer", train.optimizer))
        lr = config.get("lr", train.lr)
        return cls(
            optimizer=optimizer,
            lr=float(lr) if lr is not None else default_lr(optimizer),
            weight_decay=float(config.get("weight_decay", train.weight_decay)),
            seed=int(config.get("seed", train.seed)),
        )
