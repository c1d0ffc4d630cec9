"""Build and run the Tuner: prepared data -> Optuna TPE (or random) + ASHA -> results folder.

Ray is started here: embedded and sized to this machine when no address is given, or connected to
a running cluster (`--address auto`, `ray://…`, or `RAY_ADDRESS`).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import yaml

from data.load import read_split
from data.prepare import Prepared, prepare
from search.config import ConfigError, ExperimentConfig, to_dict
from search.records import SummaryCallback
from search.space import define_by_run
from trainable import keys
from trainable.model import tokenizer_name

DDP_DRIVER_CPU = 0.01  # what a multi-worker trial's own process holds; Ray refuses 0

def experiment_dir(config: ExperimentConfig) -> Path:
    """`<storage_path>/<name>`, absolute (Tune runs trials in their own working directories)."""
    return Path(config.storage_path).expanduser().resolve() / config.name


def prepare_data(config: ExperimentConfig) -> Prepared:
    return prepare(config.data, tokenizer=tokenizer_name(config.model.name))


def _init_ray(address: str | None, dashboard: bool) -> None:
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:  # embedded local Ray, sized to this machine
        # The dashboard's processes take CPU from the trials (measured: ~5% of a 2-core machine's
        # training throughput), so a local run starts it only when asked.
        ray.init(num_cpus=os.cpu_count(), log_to_driver=True, include_dashboard=dashboard)


def run_search(config: ExperimentConfig, *, address: str | None = None, overwrite: bool = False, dashboard: bool = False) -> Path:
    """Runs the experiment and returns its results folder."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from trainable.entry import TrialSettings, train_fn

    folder = experiment_dir(config)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise ConfigError(f"{folder}: already holds results (use another `name`, or --overwrite to replace them)")
        shutil.rmtree(folder)

    prepared = prepare_data(config)
    folder.mkdir(parents=True, exist_ok=True)
    resolved = {**to_dict(config), "prepared_path": str(prepared.path)}
    (folder / keys.CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))

    _init_ray(address, dashboard)
    ray.data.DataContext.get_current().enable_progress_bars = False  # a bar per trial per epoch is noise
    train_data = read_split(prepared.split_dir("train"))
    val_data = read_split(prepared.split_dir("validation"))
    test_data = read_split(prepared.split_dir("test")) if config.train.eval_test else None

    resources = config.resources
    settings = TrialSettings(
        model=config.model,
        train=config.train,
        num_labels=prepared.num_labels,
        num_train=prepared.manifest["splits"]["train"]["rows"],
        pad_id=prepared.manifest["tokenizer"]["pad_token_id"],
        majority_p1=prepared.manifest["splits"]["validation"]["majority_p1"],
        threads=config.train.threads or max(1, math.floor(resources.cpus_per_trial / config.train.workers_per_trial)),
        cpus_per_trial=resources.cpus_per_trial,
        gpus_per_trial=resources.gpus_per_trial,
        driver_cpu=DDP_DRIVER_CPU if config.train.workers_per_trial > 1 else 0.0,
    )
    if config.train.workers_per_trial > 1:
        # The trial only drives a TorchTrainer; its workers share the trial's CPUs and GPUs.
        trial_resources = {"cpu": DDP_DRIVER_CPU}
    else:
        trial_resources = {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    trainable = tune.with_resources(
        tune.with_parameters(train_fn, settings=settings, train_data=train_data, val_data=val_data, test_data=test_data),
        trial_resources,
    )

    search = config.search
    sampler = (optuna.samplers.TPESampler(seed=search.seed) if search.algorithm == "tpe"
               else optuna.samplers.RandomSampler(seed=search.seed))
    # A define-by-run space fixes the Optuna study at construction, and Tune never forwards
    # TuneConfig's metric/mode to it (it skips set_search_properties for an empty param_space),
    # so this searcher is the one place besides TuneConfig that must be told them.
    searcher = OptunaSearch(space=define_by_run(search.space), sampler=sampler, metric=search.metric, mode=search.mode)
    if search.scheduler.name == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=config.train.epochs,
                                  grace_period=search.scheduler.grace_period,
                                  reduction_factor=search.scheduler.reduction_factor)
    else:
        scheduler = FIFOScheduler()

    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=search.metric,
            mode=search.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=search.num_samples,
            max_concurrent_trials=search.max_concurrent_trials,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=config.name,
            storage_path=str(folder.parent),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=search.checkpoints_to_keep),
            callbacks=[SummaryCallback(folder, metric=search.metric, mode=search.mode, max_epochs=config.train.epochs)],
        ),
    )
    tuner.fit()
    return folder
