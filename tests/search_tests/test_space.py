"""The search space as the sampler sees it: the lr is searched per optimizer, as a factor over its
default, so TPE's suggestions for each optimizer follow that optimizer's own results."""

from __future__ import annotations

import math
import statistics

import optuna
import pytest

from sweetspot.search.config import Range, SpaceConfig
from sweetspot.search.space import define_by_run, sampler
from sweetspot.trainable.optimizers import default_lr

# A synthetic objective: each optimizer trains best at its own factor of its default lr (adam at
# 0.1 × 1e-3, adagrad at 10 × 1e-2), one unit worse per decade away from it.
BEST_FACTOR = {"adam": 0.1, "adagrad": 10.0}


def _score(optimizer: str, lr: float) -> float:
    return -abs(math.log10(lr / default_lr(optimizer)) - math.log10(BEST_FACTOR[optimizer]))


def test_tpe_suggestions_per_optimizer_follow_that_optimizers_own_results():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SpaceConfig(optimizer=("adam", "adagrad"), lr_factor=Range(1e-3, 1e2))
    study = optuna.create_study(direction="maximize", sampler=sampler("tpe", seed=0))
    sample = define_by_run(space)
    suggested: dict[str, list[float]] = {"adam": [], "adagrad": []}
    for i in range(60):
        # The optimizer is pinned in turn, so both get 30 trials and the test reads TPE's lr model
        # of each; the lr is the sampler's suggestion.
        study.enqueue_trial({"optimizer": ("adam", "adagrad")[i % 2]})
        trial = study.ask()
        constants = sample(trial)
        config = {**trial.params, **constants}  # what a Tune trial receives
        study.tell(trial, _score(config["optimizer"], config["lr"]))
        if i >= 20:  # past TPE's start-up trials
            suggested[config["optimizer"]].append(math.log10(config["lr"] / default_lr(config["optimizer"])))
    for optimizer, best in BEST_FACTOR.items():
        logs = suggested[optimizer]
        # The median suggestion lies within 0.3 decades of this optimizer's optimum (the other
        # optimizer's is 2 decades away), and at least 30% of them within half a decade of it (a
        # uniform draw over the 5-decade range puts 20% there).
        near = sum(abs(x - math.log10(best)) <= 0.5 for x in logs) / len(logs)
        assert abs(statistics.median(logs) - math.log10(best)) <= 0.3 and near >= 0.3, (optimizer, logs)


def test_trial_receives_lr_and_the_factor_it_came_from():
    space = SpaceConfig(optimizer=("adam", "adadelta"), lr_factor=Range(1e-3, 10.0))
    study = optuna.create_study(sampler=sampler("random", seed=1))
    for _ in range(10):
        trial = study.ask()
        constants = define_by_run(space)(trial)
        config = {**trial.params, **constants}
        optimizer = config["optimizer"]
        assert set(config) == {"optimizer", f"lr_factor_{optimizer}", "lr_factor", "lr", "weight_decay"}
        assert config["lr_factor"] == config[f"lr_factor_{optimizer}"] and 1e-3 <= config["lr_factor"] <= 10.0
        assert config["lr"] == pytest.approx(config["lr_factor"] * default_lr(optimizer))
        study.tell(trial, 0.0)
    # One optimizer: nothing to keep apart, the parameter is plain `lr_factor`; an absolute range is `lr`.
    trial = optuna.create_study().ask()
    assert define_by_run(SpaceConfig(optimizer=("adam",)))(trial)["optimizer"] == "adam" and set(trial.params) == {"lr_factor"}
    trial = optuna.create_study().ask()
    define_by_run(SpaceConfig(optimizer=("adam", "adagrad"), lr=Range(1e-5, 1e-1)))(trial)
    assert set(trial.params) == {"optimizer", f"lr_{trial.params['optimizer']}"}
