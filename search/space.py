"""The search space, with flat parameter names (`optimizer`, `lr`, `weight_decay`, `seed`).

- `tpe` / `random`: an Optuna define-by-run function. The lr range depends on the optimizer
  chosen first (`lr_factor` × its default lr), which a static Tune space cannot express.
- `grid`: every combination of the space's lists, expanded here, so that `--dry-run` prints
  exactly the trial configurations the search runs.

Example:
    >>> import optuna
    >>> sample = define_by_run(SpaceConfig(optimizer=("adam",), lr_factor=Range(0.1, 1.0)))
    >>> trial = optuna.create_study().ask()
    >>> constants = sample(trial)
    >>> 1e-4 <= trial.params["lr"] <= 1e-3, constants
    (True, {'weight_decay': 0.0})
    >>> grid(SpaceConfig(optimizer=("adam", "adagrad"), lr_factor=(1.0, 0.1)), seeds=1, first_seed=0)[:2]
    [{'optimizer': 'adam', 'lr': 0.001, 'weight_decay': 0.0, 'seed': 0}, {'optimizer': 'adam', 'lr': 0.0001, 'weight_decay': 0.0, 'seed': 0}]
"""

from __future__ import annotations

import itertools
from typing import Any

from sweetspot.search.config import Range, SpaceConfig
from sweetspot.trainable.optimizers import default_lr


def _lr_choices(space: SpaceConfig, optimizer: str) -> Range | tuple[float, ...]:
    """The lrs searched for `optimizer`: the absolute `lr`, else `lr_factor` × its default."""
    if space.lr is not None:
        return space.lr
    base = default_lr(optimizer)
    f = space.lr_factor
    if isinstance(f, Range):
        return Range(base * f.low, base * f.high, f.log)
    return tuple(_round(base * x) for x in f)


def _round(x: float) -> float:
    """1e-3 × 0.1 is 1.0000000000000002e-04 in floating point; keep the value a user wrote."""
    return float(f"{x:.12g}")


def _suggest(trial: Any, name: str, choices: Range | tuple[float, ...] | float, constants: dict[str, Any]) -> None:
    if isinstance(choices, Range):
        if choices.low == choices.high:
            constants[name] = choices.low
        else:
            trial.suggest_float(name, choices.low, choices.high, log=choices.log)
    elif isinstance(choices, tuple):
        if len(choices) == 1:
            constants[name] = choices[0]
        else:
            trial.suggest_categorical(name, list(choices))
    else:
        constants[name] = choices


class define_by_run:
    """`sample = define_by_run(space)`; `sample(optuna_trial)` suggests `optimizer`, `lr`,
    `weight_decay` and returns the parameters that are fixed (Tune merges them into the trial
    config). A class, not a closure, because Tune pickles the searcher with its state."""

    def __init__(self, space: SpaceConfig):
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any] | None:
        constants: dict[str, Any] = {}
        optimizer = trial.suggest_categorical("optimizer", list(self.space.optimizer))
        _suggest(trial, "lr", _lr_choices(self.space, optimizer), constants)
        _suggest(trial, "weight_decay", self.space.weight_decay, constants)
        return constants or None


def grid(space: SpaceConfig, *, seeds: int, first_seed: int) -> list[dict[str, Any]]:
    """Every trial configuration of a grid: optimizer × lr × weight decay × seed."""
    wd = space.weight_decay if isinstance(space.weight_decay, tuple) else (space.weight_decay,)
    configs = []
    for optimizer in space.optimizer:
        lrs = _lr_choices(space, optimizer)
        for lr, decay, seed in itertools.product(lrs, wd, range(first_seed, first_seed + seeds)):
            configs.append({"optimizer": optimizer, "lr": lr, "weight_decay": decay, "seed": seed})
    return configs
