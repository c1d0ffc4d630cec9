"""The Ray Tune trainable: the only module of `trainable/` that touches Ray.

`train_fn` runs inside the trial process: it reads the trial's parameters, builds the model and
optimizer, resumes from Tune's checkpoint if there is one, and runs `loop.fit` with Ray Data
batches and a report callback that writes a checkpoint and calls `tune.report` once per epoch
(so ASHA decides per epoch).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from data.load import batches_from_windows, ray_windows
from trainable import keys
from trainable.config import ModelConfig, TrainConfig, TrialParams
from trainable.loop import TrainerState, fit, load_checkpoint, save_checkpoint
from trainable.model import build_model
from trainable.optimizers import build_optimizer


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of an experiment shares (passed once with `tune.with_parameters`)."""

    model: ModelConfig
    train: TrainConfig
    num_labels: int
    pad_id: int
    majority_p1: float  # validation P@1 of the most-frequent-label predictor
    threads: int  # torch threads: Ray sets OMP_NUM_THREADS=1 in workers, so set it explicitly


def train_fn(config: dict[str, Any], *, settings: TrialSettings, train_data: Any, val_data: Any) -> None:
    """Tune function trainable. `train_data`/`val_data` are materialized Ray datasets of a
    prepared split (materialized once in the driver: lazy reads inside trials can starve)."""
    torch.set_num_threads(settings.threads)
    params = TrialParams.from_trial_config(config, settings.train)
    torch.manual_seed(params.seed)
    random.seed(params.seed)

    model = build_model(settings.model, settings.num_labels)
    optimizer = build_optimizer(params.optimizer, model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    state = TrainerState()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(Path(folder), model, optimizer)

    train = settings.train
    window_rows = train.batch_size * train.bucket_window

    def train_batches(epoch: int):
        seed = params.seed * 1_000_003 + epoch  # a fresh, reproducible order every epoch
        windows = ray_windows(train_data, window_rows=window_rows, shuffle_seed=seed)
        return batches_from_windows(windows, batch_size=train.batch_size, num_labels=settings.num_labels,
                                    pad_id=settings.pad_id, shuffle_seed=seed)

    def val_batches():
        windows = ray_windows(val_data, window_rows=train.eval_batch_size * train.bucket_window)
        return batches_from_windows(windows, batch_size=train.eval_batch_size, num_labels=settings.num_labels,
                                    pad_id=settings.pad_id)

    def report(metrics: dict[str, float], state: TrainerState) -> None:
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(Path(folder), model, optimizer, state)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    node_id = ray.get_runtime_context().get_node_id()  # where this trial ran (multi-node placement)
    fit(model, optimizer, epochs=train.epochs, state=state, train_batches=train_batches, val_batches=val_batches,
        report=report, extra_metrics={keys.MAJORITY_P1: settings.majority_p1, keys.NODE_ID: node_id})
