"""The search space, with flat parameter names (`optimizer`, `lr`, `weight_decay`, `seed`).

- `tpe` / `random`: an Optuna define-by-run function. The learning rate is searched per
  optimizer, as a factor over that optimizer's default lr on a log scale (`lr_factor_adam`,
  `lr_factor_adagrad`, ...; or `lr_adam`, ... for an absolute `lr` range), so TPE models each
  optimizer's lr from that optimizer's own trials instead of pooling Adam's 1e-4 with Adagrad's
  1e-1. The trial receives `lr` (and `lr_factor`) computed from it.
- `grid`: every combination of the space's lists, expanded here, so that `--dry-run` prints
  exactly the trial configurations the search runs.

Example:
    >>> import optuna
    >>> sample = define_by_run(SpaceConfig(optimizer=("adam", "adagrad"), lr_factor=Range(0.1, 1.0)))
    >>> trial = optuna.create_study(sampler=sampler("random", seed=0)).ask()
    >>> constants = sample(trial)
    >>> trial.params["optimizer"], sorted(trial.params), sorted(constants)
    ('adagrad', ['lr_factor_adagrad', 'optimizer'], ['lr', 'lr_factor', 'weight_decay'])
    >>> round(constants["lr"] / trial.params["lr_factor_adagrad"], 9)  # adagrad's default lr
    0.01
    >>> grid(SpaceConfig(optimizer=("adam", "adagrad"), lr_factor=(1.0, 0.1)), seeds=1, first_seed=0)[:2]
    [{'optimizer': 'adam', 'lr': 0.001, 'weight_decay': 0.0, 'seed': 0}, {'optimizer': 'adam', 'lr': 0.0001, 'weight_decay': 0.0, 'seed': 0}]
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna

from sweetspot.search.config import Range, SpaceConfig
from sweetspot.trainable.optimizers import default_lr

OWN_STARTUP_TRIALS = 3  # an optimizer's lr is drawn at random until it has this many finished trials


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


def _suggest(trial: Any, name: str, choices: Range | tuple[float, ...] | float, constants: dict[str, Any]) -> Any:
    """Suggests `name` (a fixed value goes to `constants` instead) and returns its value."""
    if isinstance(choices, Range) and choices.low != choices.high:
        return trial.suggest_float(name, choices.low, choices.high, log=choices.log)
    if isinstance(choices, tuple) and len(choices) > 1:
        return trial.suggest_categorical(name, list(choices))
    value = choices.low if isinstance(choices, Range) else choices[0] if isinstance(choices, tuple) else choices
    constants[name] = value
    return value


class define_by_run:
    """`sample = define_by_run(space)`; `sample(optuna_trial)` suggests `optimizer`, the lr
    (per optimizer) and `weight_decay`, and returns what the sampler did not choose: `lr` and
    `lr_factor` computed from the suggestion, and fixed values (Tune merges them into the trial
    config). A class, not a closure, because Tune pickles the searcher with its state."""

    def __init__(self, space: SpaceConfig):
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        constants: dict[str, Any] = {}
        optimizer = _suggest(trial, "optimizer", self.space.optimizer, constants)
        absolute = self.space.lr is not None
        key = "lr" if absolute else "lr_factor"
        # One parameter per optimizer: TPE then builds each optimizer's lr model from its own trials.
        name = f"{key}_{optimizer}" if len(self.space.optimizer) > 1 else key
        value = _suggest(trial, name, self.space.lr if absolute else self.space.lr_factor, {})
        constants.update({"lr": value} if absolute else {"lr_factor": value, "lr": _round(default_lr(optimizer) * value)})
        _suggest(trial, "weight_decay", self.space.weight_decay, constants)
        return constants


def sampler(algorithm: str, seed: int) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler of `search.algorithm`: `random`, or `tpe` with per-optimizer lr models."""
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return PerOptimizerTPE(seed=seed)


class PerOptimizerTPE(optuna.samplers.BaseSampler):
    """Optuna's TPE, except that an optimizer's own parameters (`lr_factor_adam`, ...) are modelled
    from that optimizer's finished trials alone, split into good and bad among themselves.

    Plain TPE splits all trials into good and bad at once: while Adam's trials lead, every Adagrad
    trial counts as bad and Adagrad's lr is drawn from the prior, whatever Adagrad's own results.
    Here each optimizer's lr follows its own best trials; TPE over all trials still picks the
    optimizer and the shared parameters.
    """

    def __init__(self, *, seed: int):
        self._all = optuna.samplers.TPESampler(seed=seed)
        self._own = optuna.samplers.TPESampler(seed=seed + 1, n_startup_trials=OWN_STARTUP_TRIALS)

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        optimizer = trial.params.get("optimizer")  # suggested first (define_by_run)
        if optimizer is None or not param_name.endswith(f"_{optimizer}"):
            return self._all.sample_independent(study, trial, param_name, param_distribution)
        return self._own.sample_independent(_trials_of(study, optimizer), trial, param_name, param_distribution)


def _trials_of(study: optuna.Study, optimizer: str) -> optuna.Study:
    """An in-memory copy of `study` holding only the finished trials of `optimizer`."""
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per suggestion
    try:
        own = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    own.add_trials([t for t in study.get_trials(deepcopy=False, states=finished) if t.params.get("optimizer") == optimizer])
    return own


def grid(space: SpaceConfig, *, seeds: int, first_seed: int) -> list[dict[str, Any]]:
    """Every trial configuration of a grid: optimizer × lr × weight decay × seed."""
    wd = space.weight_decay if isinstance(space.weight_decay, tuple) else (space.weight_decay,)
    configs = []
    for optimizer in space.optimizer:
        lrs = _lr_choices(space, optimizer)
        for lr, decay, seed in itertools.product(lrs, wd, range(first_seed, first_seed + seeds)):
            configs.append({"optimizer": optimizer, "lr": lr, "weight_decay": decay, "seed": seed})
    return configs
