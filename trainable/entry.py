"""The Ray Tune trainable: the only module of `trainable/` that touches Ray.

`train_fn` runs inside the trial process: it reads the trial's parameters, builds the model,
optimizer and schedule, resumes from Tune's checkpoint if there is one, and runs `loop.fit` with
Ray Data batches and a report callback that snapshots a checkpoint, which a background thread
writes and then reports with `tune.report` (once per epoch, so ASHA decides per epoch). With
`train.workers_per_trial > 1` the same loop runs under Ray Train's TorchTrainer (DDP) started
inside the trial, each worker on a shard of train (there rank 0 still writes its checkpoint in the loop).
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from sweetspot.data.load import batches_from_windows, epoch_order, ray_windows
from sweetspot.trainable import keys
from sweetspot.trainable.checkpoint import BackgroundWriter
from sweetspot.trainable.config import ModelConfig, TrainConfig, TrialParams
from sweetspot.trainable.loop import TrainerState, fit, load_checkpoint, save_checkpoint
from sweetspot.trainable.model import build_model
from sweetspot.trainable.optimizers import build_optimizer, build_scheduler, param_groups

REPORT_FILE = "report.json"  # each checkpoint carries its report: a resume may outrun Tune's records (search/checkpoints.py)


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of an experiment shares (passed once with `tune.with_parameters`)."""

    model: ModelConfig
    train: TrainConfig
    num_labels: int
    num_train: int  # training documents (sets the steps of an epoch, for the lr schedule)
    pad_id: int
    majority_p1: float  # validation P@1 of the most-frequent-label predictor
    prior_bce: float  # the label-prior plateau of the training split (Prepared.label_prior_bce)
    threads: int  # torch threads: Ray sets OMP_NUM_THREADS=1 in workers, so set it explicitly
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    driver_cpu: float = 0.0  # CPUs the trial's own process holds when it drives DDP workers


def _batch_factories(
    settings: TrialSettings, seed: int, train_data: Any, eval_data: dict[str, Any], rank: int = 0, workers: int = 1
):
    """Batch factories over Ray datasets (or Ray Train iterators): train(epoch), and one per eval split."""
    train, num_labels, pad = settings.train, settings.num_labels, settings.pad_id

    def train_batches(epoch: int):
        # A fresh, reproducible permutation of the whole split every epoch; this worker's share of it.
        order = epoch_order(settings.num_train, (seed, epoch), rank=rank, workers=workers)
        windows = ray_windows(train_data, window_rows=train.batch_size * train.bucket_window, order=order)
        return batches_from_windows(
            windows, batch_size=train.batch_size, num_labels=num_labels, pad_id=pad, shuffle_seed=seed * 1_000_003 + epoch
        )

    def eval_factory(data: Any) -> Callable:
        def batches():
            windows = ray_windows(data, window_rows=train.eval_batch_size * train.bucket_window)
            return batches_from_windows(windows, batch_size=train.eval_batch_size, num_labels=num_labels, pad_id=pad)

        return batches

    return train_batches, {prefix: eval_factory(data) for prefix, data in eval_data.items()}


def _build(settings: TrialSettings, params: TrialParams, device: torch.device, steps_per_epoch: int, checkpoint: Any):
    """Model, optimizer and schedule from the seed, then the progress in `checkpoint` (Tune's or
    Ray Train's; None for a fresh start)."""
    torch.manual_seed(params.seed)
    random.seed(params.seed)
    train = settings.train
    model = build_model(settings.model, settings.num_labels).to(device)
    groups = param_groups(model, params.weight_decay, decay_bias_and_norm=train.decay_bias_and_norm)
    optimizer = build_optimizer(params.optimizer, groups, lr=params.lr, weight_decay=params.weight_decay)
    scheduler = build_scheduler(
        optimizer, schedule=train.schedule, total_steps=steps_per_epoch * train.epochs, warmup_ratio=train.warmup_ratio
    )
    state = TrainerState()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(Path(folder), model, optimizer, scheduler)
    return model, optimizer, scheduler, state


def train_fn(config: dict[str, Any], *, settings: TrialSettings, train_data: Any, val_data: Any, test_data: Any = None) -> None:
    """Tune function trainable. The datasets are materialized Ray datasets of prepared splits
    (materialized once in the driver: lazy reads inside trials can starve on a small machine)."""
    if settings.train.workers_per_trial > 1:
        return _run_data_parallel(config, settings, train_data, val_data, test_data)
    torch.set_num_threads(settings.threads)
    params = TrialParams.from_trial_config(config, settings.train)
    device = torch.device("cuda" if settings.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu")
    steps_per_epoch = math.ceil(settings.num_train / settings.train.batch_size)
    model, optimizer, scheduler, state = _build(settings, params, device, steps_per_epoch, tune.get_checkpoint())

    eval_data = {"val": val_data, **({"test": test_data} if test_data is not None else {})}
    train_batches, eval_batches = _batch_factories(settings, params.seed, train_data, eval_data)

    # The checkpoint leaves the training step (trainable/checkpoint.py): the loop waits only for the
    # copy off the device; the files and then `tune.report` follow in the writer's thread, in order.
    def publish(metrics: dict[str, float], folder: Path | None) -> None:
        (folder / REPORT_FILE).write_text(json.dumps(metrics))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))

    writer = BackgroundWriter(publish)

    def report(metrics: dict[str, float], state: TrainerState) -> None:
        writer.report(metrics, model, optimizer, scheduler, state)

    node_id = ray.get_runtime_context().get_node_id()  # where this trial ran (multi-node placement)
    try:
        fit(
            model,
            optimizer,
            scheduler,
            train=settings.train,
            state=state,
            train_batches=_guarded(train_batches, writer),
            eval_batches={k: _guarded(f, writer) for k, f in eval_batches.items()},
            report=report,
            majority_p1=settings.majority_p1,
            extra_metrics={
                keys.MAJORITY_P1: settings.majority_p1,
                keys.PRIOR_BCE: settings.prior_bce,
                keys.NODE_ID: node_id,
                keys.SEED: params.seed,
            },
            device=device,
            steps_per_epoch=steps_per_epoch,
        )
    except BaseException:
        writer.close(raise_error=False)  # the loop's own error is the one to show
        raise
    writer.close()  # the last report leaves before the trial does; a writer error is raised here


def _guarded(factory: Callable, writer: BackgroundWriter) -> Callable:
    """`factory`'s batches, stopping at the next batch once the writer thread has stopped: on an
    error, or because Tune stopped the trial (it raises SystemExit in the thread that reports, the
    writer's), so a stopped trial does not train on to its next report."""

    def batches(*args):
        for batch in factory(*args):
            if writer.failed:
                writer.raise_error()
            yield batch

    return batches


# ---------------------------------------------------------------------------------------------
# Several workers per trial: Ray Train's TorchTrainer (DDP) inside the Tune trial. Each worker
# trains on its shard of train; rank 0 evaluates the full validation split and reports.


def _worker_loop(loop_config: dict[str, Any]) -> None:
    from ray import train as ray_train
    from ray.train.torch import prepare_model

    settings: TrialSettings = loop_config["settings"]
    params: TrialParams = loop_config["params"]
    context = ray_train.get_context()
    torch.set_num_threads(settings.threads)
    workers = context.get_world_size()
    steps_per_epoch = math.ceil(settings.num_train / workers / settings.train.batch_size)
    device = ray_train.torch.get_device()
    model, optimizer, scheduler, state = _build(settings, params, device, steps_per_epoch, ray_train.get_checkpoint())
    ddp = prepare_model(model, move_to_device=False)
    ddp.embed, ddp.head = model.embed, model.head  # evaluation calls these on the unwrapped model
    shard = ray_train.get_dataset_shard("train")
    rank0 = context.get_world_rank() == 0
    eval_data = {"val": ray_train.get_dataset_shard("val")} if rank0 else {}
    if rank0 and "test" in loop_config["splits"]:
        eval_data["test"] = ray_train.get_dataset_shard("test")
    train_batches, eval_batches = _batch_factories(
        settings, params.seed, shard, eval_data, rank=context.get_world_rank(), workers=workers
    )

    def report(metrics: dict[str, float], state: TrainerState) -> None:
        if not rank0:
            ray_train.report({}, checkpoint=None)  # every worker reports; rank 0 carries the result
            return
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(Path(folder), model, optimizer, scheduler, state)
            (Path(folder) / REPORT_FILE).write_text(json.dumps(metrics))
            ray_train.report(metrics, checkpoint=ray_train.Checkpoint.from_directory(folder))

    fit(
        ddp,
        optimizer,
        scheduler,
        train=settings.train,
        state=state,
        train_batches=train_batches,
        eval_batches=eval_batches,
        report=report,
        majority_p1=settings.majority_p1,
        extra_metrics={
            keys.MAJORITY_P1: settings.majority_p1,
            keys.PRIOR_BCE: settings.prior_bce,
            keys.NODE_ID: ray.get_runtime_context().get_node_id(),
            keys.SEED: params.seed,
        },
        device=device,
        steps_per_epoch=steps_per_epoch,
    )


def _worker_resources(settings: TrialSettings) -> dict[str, float]:
    """The trial's CPUs (less what its driving process holds) and GPUs, split between workers."""
    workers = settings.train.workers_per_trial
    resources = {"CPU": (settings.cpus_per_trial - settings.driver_cpu) / workers}
    if settings.gpus_per_trial > 0:
        resources["GPU"] = settings.gpus_per_trial / workers
    return resources


def _run_data_parallel(config, settings: TrialSettings, train_data, val_data, test_data) -> None:
    from ray.train import DataConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    workers = settings.train.workers_per_trial
    datasets = {"train": train_data, "val": val_data, **({"test": test_data} if test_data is not None else {})}
    context = tune.get_context()
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "settings": settings,
            "params": TrialParams.from_trial_config(config, settings.train),
            "splits": list(datasets),
        },
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=settings.gpus_per_trial > 0, resources_per_worker=_worker_resources(settings)
        ),
        datasets=datasets,
        # Not split by Ray: every worker reads all of train and takes its share of the epoch's permutation.
        dataset_config=DataConfig(datasets_to_split=[]),
        run_config=RunConfig(
            name=f"ddp_{context.get_trial_id()}", storage_path=context.get_trial_dir(), callbacks=[TuneReportCallback()]
        ),
    )
    trainer.fit()
