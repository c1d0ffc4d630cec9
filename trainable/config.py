"""Typed settings of one fine-tuning trial: fixed ones (`ModelConfig`, `TrainConfig`) from the
experiment file, searched ones (`TrialParams`) from the Tune trial's config dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweetspot.checks import above, at_least, between, non_empty, one_of, optional, registered, rule


def _optimizers():
    from sweetspot.trainable.optimizers import OPTIMIZERS  # imports torch: only when a config is checked

    return OPTIMIZERS


@dataclass(frozen=True)
class ModelConfig:
    """The encoder and its classification head.

    Attributes:
        name: A registered name (`minilm-l6`, `tiny-distilbert`), a hub id such as
            `distilbert-base-uncased`, or a local folder with a Hugging Face encoder.
        dropout: Dropout rate between the pooled embedding and the linear head.
        pooling: `cls` (the [CLS] token's last hidden state, as the study) or `mean`.
    """

    name: str = field(default="minilm-l6", metadata=rule(non_empty))  # found or not: search/preflight.py
    dropout: float = field(default=0.1, metadata=rule(between(0.0, 1.0)))
    pooling: str = field(default="cls", metadata=rule(one_of("cls", "mean")))


@dataclass(frozen=True)
class TrainConfig:
    """Settings every trial shares.

    Attributes:
        epochs: Training epochs; with one report per epoch, ASHA's max_t equals this.
        batch_size: Training documents per step.
        eval_batch_size: Documents per forward pass when evaluating.
        optimizer: Optimizer used when the search space does not choose one.
        lr: Learning rate used when the search space does not choose one (`None`: the optimizer's
            default from `trainable.optimizers.OPTIMIZERS`).
        weight_decay: Weight decay used when the search space does not choose one. Always explicit.
        decay_bias_and_norm: Apply weight decay to biases and LayerNorm weights too (as torch does
            by default and the study did); `false` exempts them, as BERT's recipe does.
        schedule: `constant` (as the study) or `linear` (warm-up, then linear decay to 0).
        warmup_ratio: Share of all steps spent warming up (`linear` schedule).
        grad_clip: Clip the gradients' global norm to this value (`None`: no clipping).
        seed: Seed of model initialisation and batch order, unless the search sets `seed`.
        bucket_window: Length bucketing: documents are sorted by length within windows of this
            many batches, then the batches are shuffled, so padding stays small.
        eval_every_steps: Also evaluate and report every this many steps (`None`: once per epoch).
        eval_test: Also evaluate the test split at every report (`test_p1`, ...), as the study
            plotted test P@1 per epoch.
        embed_sample: Documents (the first of the validation split) whose pooled embeddings give
            `val_embed_rank`.
        collapse_entropy_fraction: Collapse rule: prediction entropy <= this × true-label entropy ...
        collapse_p1_margin: ... and P@1 <= the majority-label floor + this.
        threads: torch threads per trial; `None` means the trial's CPUs.
        bf16: On CUDA, run forward passes under bfloat16 autocast (ignored on CPU).
        workers_per_trial: Data-parallel workers per trial; more than 1 runs the loop under Ray
            Train's TorchTrainer (DDP) inside the trial, each worker on a shard of the train split.
    """

    epochs: int = field(default=3, metadata=rule(at_least(1)))
    batch_size: int = field(default=16, metadata=rule(at_least(1)))
    eval_batch_size: int = field(default=64, metadata=rule(at_least(1)))
    optimizer: str = field(default="adam", metadata=rule(registered(_optimizers, "optimizer")))
    lr: float | None = field(default=None, metadata=rule(optional(above(0.0))))
    weight_decay: float = field(default=0.0, metadata=rule(at_least(0.0)))
    decay_bias_and_norm: bool = True
    schedule: str = field(default="constant", metadata=rule(one_of("constant", "linear")))
    warmup_ratio: float = field(default=0.0, metadata=rule(between(0.0, 1.0)))
    grad_clip: float | None = field(default=None, metadata=rule(optional(above(0.0))))
    seed: int = field(default=0, metadata=rule(between(0, 2**32 - 1, include_high=True)))  # numpy takes [0, 2**32)
    bucket_window: int = field(default=50, metadata=rule(at_least(1)))
    eval_every_steps: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    eval_test: bool = False
    embed_sample: int = field(default=512, metadata=rule(at_least(1)))
    collapse_entropy_fraction: float = field(default=0.2, metadata=rule(between(0.0, 1.0, include_high=True)))
    collapse_p1_margin: float = field(default=0.01, metadata=rule(between(0.0, 1.0, include_high=True)))
    threads: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    bf16: bool = False
    workers_per_trial: int = field(default=1, metadata=rule(at_least(1)))


@dataclass(frozen=True)
class TrialParams:
    """What the search chooses for one trial (the flat keys of Tune's trial config)."""

    optimizer: str
    lr: float
    weight_decay: float
    seed: int

    @classmethod
    def from_trial_config(cls, config: Mapping[str, Any], train: TrainConfig) -> TrialParams:
        """Reads Tune's flat trial config once, falling back to the fixed `train` settings."""
        from sweetspot.trainable.optimizers import default_lr  # local: keeps this module torch-free

        optimizer = str(config.get("optimizer", train.optimizer))
        lr = config.get("lr", train.lr)
        return cls(
            optimizer=optimizer,
            lr=float(lr) if lr is not None else default_lr(optimizer),
            weight_decay=float(config.get("weight_decay", train.weight_decay)),
            # Tune's Repeater numbers the runs of one configuration with __trial_index__.
            seed=int(config.get("seed", train.seed + int(config.get("__trial_index__", 0)))),
        )
