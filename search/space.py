"""The search space as an Optuna define-by-run function, with flat parameter names.

The lr range depends on the optimizer chosen first (`lr_factor` × its default lr), which a
static Tune space cannot express; Optuna's define-by-run can.

Example:
    >>> import optuna
    >>> sample = define_by_run(SpaceConfig(optimizer=("adam",), lr_factor=Range(0.1, 1.0)))
    >>> trial = optuna.create_study().ask()
    >>> constants = sample(trial)
    >>> 1e-4 <= trial.params["lr"] <= 1e-3, constants
    (True, {'weight_decay': 0.0})
"""

from __future__ import annotations

from typing import Any

from search.config import Range, SpaceConfig
from trainable.optimizers import default_lr


def lr_bounds(space: SpaceConfig, optimizer: str) -> Range:
    """The lr range searched for `optimizer`: the absolute `lr`, else `lr_factor` × its default."""
    if space.lr is not None:
        return space.lr
    base = default_lr(optimizer)
    return Range(base * space.lr_factor.low, base * space.lr_factor.high, space.lr_factor.log)


class define_by_run:
    """`sample = define_by_run(space)`; `sample(optuna_trial)` suggests `optimizer`, `lr`,
    `weight_decay` and returns the parameters that are fixed (Tune merges them into the trial
    config). A class, not a closure, because Tune pickles the searcher with its state."""

    def __init__(self, space: SpaceConfig):
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any] | None:
        space = self.space
        constants: dict[str, Any] = {}
        optimizer = trial.suggest_categorical("optimizer", list(space.optimizer))
        lr = lr_bounds(space, optimizer)
        if lr.low == lr.high:
            constants["lr"] = lr.low
        else:
            trial.suggest_float("lr", lr.low, lr.high, log=lr.log)
        wd = space.weight_decay
        if isinstance(wd, Range) and wd.low != wd.high:
            trial.suggest_float("weight_decay", wd.low, wd.high, log=wd.log)
        else:
            constants["weight_decay"] = wd.low if isinstance(wd, Range) else wd
        return constants or None
