"""What chooses, schedules and stops trials (searcher, scheduler, stoppers), built once for `sweetspot search`
and the replay benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweetspot.search.config import ConfigError, ExperimentConfig
from sweetspot.search.space import define_by_run, grid, sampler
from sweetspot.search.study_url import study_storage_url
from sweetspot.trainable import keys


def trial_configs(config: ExperimentConfig) -> list[dict[str, Any]]:
    """The trial configurations of a grid (what `--dry-run` prints)."""
    search = config.search
    if search.algorithm != "grid":
        raise ConfigError(
            f"search.algorithm: --dry-run lists the trials of a grid; {search.algorithm!r} samples them while it runs"
        )
    return grid(search.space, seeds=search.seeds, first_seed=config.train.seed)


@dataclass
class SearchComponents:
    """What chooses, schedules and stops trials: built here once for `sweetspot search` and for the
    replay benchmark (bench/replay.py), so both run the same searcher, scheduler and stoppers."""

    searcher: Any  # a Tune search algorithm (grid: BasicVariantGenerator; tpe/random: OptunaSearch)
    scheduler: Any  # told the metric and mode by Tune (TuneConfig), not here
    stoppers: list[Any]
    num_samples: int
    param_space: dict[str, Any]
    grid: list[dict[str, Any]] | None  # a grid's trial configurations, in the order they run


def early_collapse_rule(config: ExperimentConfig) -> dict[str, float] | None:
    """The early collapse rule's thresholds (`trainable.collapse.early_verdict`), when the search
    stops on it: the same for the stopper and the run records."""
    if not config.search.stop_early_collapse:
        return None
    train = config.train
    return {
        "budget_epochs": train.epochs,
        "entropy_fraction": train.collapse_entropy_fraction,
        "p1_margin": train.collapse_p1_margin,
    }


def search_components(config: ExperimentConfig) -> SearchComponents:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator, Repeater
    from ray.tune.search.optuna import OptunaSearch

    from sweetspot.search.stoppers import CollapseStopper, DivergedStopper, EarlyCollapseStopper
    from sweetspot.search.study import StudyStorage

    search = config.search
    param_space: dict[str, Any] = {}
    configs = None
    if search.algorithm == "grid":
        configs = trial_configs(config)
        searcher, num_samples = (
            BasicVariantGenerator(points_to_evaluate=configs, max_concurrent=search.max_concurrent_trials),
            len(configs),
        )
        param_space = {key: None for key in configs[0]}  # the keys the points fill in
    elif search.algorithm == "edges":
        searcher, num_samples = edge_search(config), search.num_samples
    else:
        # A define-by-run space fixes the Optuna study at construction, and Tune never forwards
        # TuneConfig's metric/mode to it (it skips set_search_properties for an empty
        # param_space), so this searcher is the one place besides TuneConfig that is told them.
        searcher = OptunaSearch(
            space=define_by_run(search.space),
            sampler=sampler(search.algorithm, search.seed),
            metric=search.metric,
            mode=search.mode,
            storage=StudyStorage(study_storage_url(config)),
            study_name=config.name,
        )
        if search.seeds > 1:  # every sampled configuration runs with `seeds` seeds; Optuna sees their mean
            searcher = Repeater(searcher, repeat=search.seeds)
        num_samples = search.num_samples * search.seeds
    if search.scheduler.name == "asha":
        # Rungs and max_t in epochs, read from the reported `epoch` (fractional with
        # train.eval_every_steps): training_iteration counts reports, not epochs.
        scheduler = ASHAScheduler(
            time_attr=keys.EPOCH,
            max_t=config.train.epochs,
            grace_period=search.scheduler.grace_period,
            reduction_factor=search.scheduler.reduction_factor,
        )
    else:
        scheduler = FIFOScheduler()
    early = early_collapse_rule(config)
    stoppers = (
        ([DivergedStopper()] if search.stop_on_diverged else [])
        + ([CollapseStopper(search.stop_on_collapse)] if search.stop_on_collapse else [])
        + ([EarlyCollapseStopper(**early)] if early else [])
    )
    return SearchComponents(
        searcher=searcher, scheduler=scheduler, stoppers=stoppers, num_samples=num_samples, param_space=param_space, grid=configs
    )


def edge_search(config: ExperimentConfig):
    """The region search (search/edges.py) over the experiment's space."""
    from sweetspot.search.config import Range
    from sweetspot.search.edges import EdgeSearch

    space, search, train = config.search.space, config.search, config.train

    def bounds(value) -> tuple[float, float]:
        values = (value.low, value.high) if isinstance(value, Range) else (min(value), max(value))
        return float(values[0]), float(values[1])

    decays = space.weight_decay if isinstance(space.weight_decay, tuple) else (space.weight_decay,)
    if isinstance(space.weight_decay, Range):
        raise ConfigError(
            "search.space.weight_decay: the edges search takes a list of weight decays (edges per decay), not a range"
        )
    return EdgeSearch(
        optimizers=space.optimizer,
        epochs=train.epochs,
        lr=bounds(space.lr) if space.lr is not None else None,
        lr_factor=bounds(space.lr_factor),
        weight_decays=[float(d) for d in decays],
        max_trials=search.num_samples,
        first_seed=train.seed,
        margin=train.collapse_p1_margin,
        collapse_patience=search.stop_on_collapse,
        early_collapse=early_collapse_rule(config),
        entropy_fraction=train.collapse_entropy_fraction,
        delta=search.edges.delta,
        resolution=search.edges.resolution,
        probes=search.edges.probes,
        seeds=search.edges.seeds,
        noise=search.edges.noise,
        relatives=search.edges.relatives,
        twins=search.edges.twins,
    )
