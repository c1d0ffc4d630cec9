"""The trainable a search hands Tune: the trial function with its settings, the prepared data and
its resources."""

from __future__ import annotations

import math

from sweetspot.data.load import read_split
from sweetspot.data.prepare import Prepared
from sweetspot.search.config import ExperimentConfig

DDP_DRIVER_CPU = 0.01  # what a multi-worker trial's own process holds; Ray refuses 0


def make_trainable(config: ExperimentConfig, prepared: Prepared):
    from ray import tune

    from sweetspot.trainable.entry import TrialSettings, train_fn

    # Materialized once here and handed to every trial, in bounded blocks (data.load.read_split).
    train_data = read_split(prepared.split_dir("train"))
    val_data = read_split(prepared.split_dir("validation"))
    test_data = read_split(prepared.split_dir("test")) if config.train.eval_test else None
    resources, workers = config.resources, config.train.workers_per_trial
    settings = TrialSettings(
        model=config.model,
        train=config.train,
        num_labels=prepared.num_labels,
        num_train=prepared.manifest["splits"]["train"]["rows"],
        pad_id=prepared.manifest["tokenizer"]["pad_token_id"],
        majority_p1=prepared.manifest["splits"]["validation"]["majority_p1"],
        prior_bce=prepared.label_prior_bce(),
        threads=config.train.threads or max(1, math.floor(resources.cpus_per_trial / workers)),
        cpus_per_trial=resources.cpus_per_trial,
        gpus_per_trial=resources.gpus_per_trial,
        driver_cpu=DDP_DRIVER_CPU if workers > 1 else 0.0,
    )
    if workers > 1:  # the trial only drives a TorchTrainer; its workers share the trial's CPUs and GPUs
        trial_resources = {"cpu": DDP_DRIVER_CPU}
    else:
        trial_resources = {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    return tune.with_resources(
        tune.with_parameters(train_fn, settings=settings, train_data=train_data, val_data=val_data, test_data=test_data),
        trial_resources,
    )
