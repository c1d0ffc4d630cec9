"""Experiment files: YAML -> typed frozen dataclasses, converted and validated once.

An unknown key or a value of the wrong type fails with the key's dotted name:

    >>> try:
    ...     load_experiment_dict({"train": {"epochs": "three"}})
    ... except ConfigError as e:
    ...     print(e)
    train.epochs: expected int, got 'three'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from sweetspot.data.config import DataConfig
from sweetspot.layout import LayoutError, check_name
from sweetspot.trainable.config import ModelConfig, TrainConfig


class ConfigError(ValueError):
    """A bad experiment file or override; the message starts with the dotted key."""


@dataclass(frozen=True)
class Range:
    """A continuous search range; `log` samples log-uniformly."""

    low: float
    high: float
    log: bool = True


@dataclass(frozen=True)
class SpaceConfig:
    """The searched parameters, with the flat names the trial config uses.

    Each of `lr`, `lr_factor` and `weight_decay` is a `Range` ({low, high, log}: sampled by `tpe`
    and `random`), a list (a categorical choice; the values of a `grid`), or, for weight decay, one
    number. Lists are what `grid` needs.

    Attributes:
        optimizer: Optimizer names (keys of `trainable.optimizers.OPTIMIZERS`).
        lr: Absolute learning rates, the same for every optimizer. When `None`, the learning rate
            is `lr_factor` × the chosen optimizer's default lr (define-by-run in `tpe`/`random`).
        lr_factor: Learning rates as factors of each optimizer's default lr; the study's grid is
            [10, 1, 0.1, 0.01, 0.001], and the default range spans the same four decades.
        weight_decay: Weight decay values.
    """

    optimizer: tuple[str, ...] = ("adam", "adamw", "amsgrad", "adagrad", "adadelta")
    lr: Range | tuple[float, ...] | None = None
    lr_factor: Range | tuple[float, ...] = Range(1e-3, 10.0)
    weight_decay: Range | tuple[float, ...] | float = 0.0


@dataclass(frozen=True)
class SchedulerConfig:
    """Trial scheduler: `asha` (ASHAScheduler on the reported `epoch`, max_t = train.epochs, so
    rungs are epochs whatever `train.eval_every_steps` is) or `fifo` (every trial runs all epochs,
    as the study did)."""

    name: str = "asha"
    grace_period: int = 1
    reduction_factor: int = 2


@dataclass(frozen=True)
class SearchConfig:
    """How trials are chosen and run.

    Attributes:
        algorithm: `tpe` (Optuna TPE), `random` (Optuna's random sampler), `grid` (every
            combination of the space's lists, `num_samples` is ignored) or `edges` (the region search,
            search/edges.py: per optimizer, where val_p1 beats the majority-label floor and where that
            region's edges are; with the fifo scheduler).
        num_samples: Configurations to sample (`tpe`, `random`; `edges`: at most).
        seeds: Runs of every configuration, with seeds `train.seed`, `train.seed + 1`, ...
            (`tpe`/`random` then report each configuration's mean to the searcher, so they refuse
            more than one seed with `asha`, which would stop seeds at different epochs).
        max_concurrent_trials: Trials running at once.
        metric, mode: What the searcher and scheduler optimise (set once, here).
        seed: Seed of the sampler.
        stop_on_collapse: End a trial once `collapsed` held at every evaluation through this many
            consecutive epoch ends (`None`: never).
        stop_early_collapse: End a trial within its first epoch once the early collapse rule
            (`trainable.collapse.early_verdict`) calls it doomed: collapsed onto the label prior, or
            too slow to leave the floor within `train.epochs`. Needs `train.eval_every_steps`.
        stop_on_diverged: End a trial whose loss became NaN or inf (it also ends itself).
        max_failures: Retries of a failed trial, each from its last checkpoint.
        checkpoints_to_keep: Checkpoints kept per trial (the latest ones).
        study_storage: Where the Optuna study lives: an RDB URL (`postgresql://...`,
            `sqlite:///...`); `None` means `sqlite:///<results folder>/optuna.db` (or, when the
            results go to a storage URI, `~/.cache/sweetspot/optuna/<name>-<hash of the results
            URI>.db`, recorded in `sweetspot.yaml` as `optuna_storage`).
    """

    algorithm: str = "tpe"
    num_samples: int = 8
    seeds: int = 1
    max_concurrent_trials: int = 2
    metric: str = "val_p1"
    mode: str = "max"
    seed: int = 0
    space: SpaceConfig = field(default_factory=SpaceConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    stop_on_collapse: int | None = None
    stop_early_collapse: bool = False
    stop_on_diverged: bool = True
    max_failures: int = 0
    checkpoints_to_keep: int = 1
    study_storage: str | None = None


@dataclass(frozen=True)
class ResourcesConfig:
    """Ray resources of one trial."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment file. Results go to `<storage_path>/<name>/`."""

    name: str = "sweetspot"
    storage_path: str = "./results"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


# --------------------------------------------------------------------------------------------
# Conversion: plain YAML values -> dataclasses, naming the dotted key on every failure.


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        alternatives = typing.get_args(tp)
        if value is None:
            if type(None) in alternatives:
                return None
            raise ConfigError(f"{key}: must not be empty")
        errors = []
        # A single value is tried as a scalar before being read as a one-element list.
        if not isinstance(value, (list, tuple)):
            alternatives = sorted(alternatives, key=lambda a: typing.get_origin(a) is tuple)
        for alt in alternatives:
            if alt is type(None):
                continue
            try:
                return _convert(value, alt, key)
            except ConfigError as e:
                errors.append(str(e).split(": ", 1)[1])
        raise ConfigError(f"{key}: " + " or ".join(errors))
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, key)
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if isinstance(value, str) or not isinstance(value, Sequence):
            value = [value]  # a single value where a list is expected is a one-element list
        return tuple(_convert(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_convert(k, key_type, key): _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"{key}: unsupported config type {tp!r}")  # a bug in a dataclass, not input


def _from_mapping(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "the experiment file"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in raw:
        if k not in names:
            dotted = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(f"{dotted}: unknown key (known under {where}: {', '.join(names)})")
    kwargs = {}
    for name in names:
        if name in raw:
            dotted = f"{prefix}.{name}" if prefix else name
            kwargs[name] = _convert(raw[name], hints[name], dotted)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{where}: {e}") from None


def apply_override(raw: dict, assignment: str) -> None:
    """Applies one `--set a.b=value` to the raw mapping; the value is parsed as YAML."""
    dotted, sep, text = assignment.partition("=")
    if not sep or not dotted:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.epochs=2")
    parts = dotted.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, cannot set {dotted}")
        node = child
    node[parts[-1]] = yaml.safe_load(text) if text.strip() else None


def load_experiment_dict(raw: Mapping[str, Any] | None) -> ExperimentConfig:
    """Converts a parsed YAML mapping into an `ExperimentConfig`, validating every key."""
    config = _from_mapping(ExperimentConfig, raw, "")
    _check_values(config)
    return config


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Reads an experiment YAML file and applies `--set` overrides.

    Raises:
        ConfigError: naming the file and the dotted key of the first problem.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    raw = dict(raw or {}) if isinstance(raw, Mapping) else raw
    try:
        for assignment in overrides:
            if not isinstance(raw, dict):
                break
            apply_override(raw, assignment)
        return load_experiment_dict(raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _check_values(c: ExperimentConfig) -> None:
    """Value checks that types alone cannot express."""
    from sweetspot.trainable.optimizers import OPTIMIZERS

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    try:  # one plain folder name: `..` or `.` would put the results (and --overwrite's delete) outside storage_path
        check_name(c.name)
    except LayoutError as e:
        raise ConfigError(str(e)) from None
    need(c.train.epochs >= 1, "train.epochs: must be >= 1")
    need(c.train.batch_size >= 1, "train.batch_size: must be >= 1")
    need(c.train.schedule in ("constant", "linear"), f"train.schedule: expected constant or linear, got {c.train.schedule!r}")
    need(0.0 <= c.train.warmup_ratio < 1.0, "train.warmup_ratio: must be in [0, 1)")
    need(c.train.eval_every_steps is None or c.train.eval_every_steps >= 1, "train.eval_every_steps: must be >= 1")
    need(c.train.grad_clip is None or c.train.grad_clip > 0, "train.grad_clip: must be > 0")
    need(c.train.workers_per_trial >= 1, "train.workers_per_trial: must be >= 1")
    need(c.data.max_len >= 8, "data.max_len: must be >= 8")
    need(0.0 < c.data.validation_fraction < 1.0, "data.validation_fraction: must be in (0, 1)")
    need(0.0 < c.data.test_fraction < 1.0, "data.test_fraction: must be in (0, 1)")
    need(c.data.min_label_count >= 1, "data.min_label_count: must be >= 1")
    need(c.data.top_k_labels is None or c.data.top_k_labels >= 1, "data.top_k_labels: must be >= 1")
    need(c.search.num_samples >= 1, "search.num_samples: must be >= 1")
    need(c.search.max_concurrent_trials >= 1, "search.max_concurrent_trials: must be >= 1")
    need(c.search.algorithm in ("tpe", "random", "grid", "edges"),
         f"search.algorithm: expected tpe, random, grid or edges, got {c.search.algorithm!r}")
    need(c.search.algorithm != "edges" or c.search.scheduler.name == "fifo",
         "search.scheduler.name: the edges search reads every trial at the budget; use fifo (and "
         "search.stop_early_collapse to end doomed trials early)")
    need(c.search.algorithm != "edges" or c.search.seeds == 1,
         "search.seeds: the edges search chooses its own seeds (a second one at an edge within the noise); leave it at 1")
    need(c.search.algorithm != "edges" or c.search.metric == "val_p1" and c.search.mode == "max",
         "search.metric: the edges search finds where val_p1 beats the majority-label floor; it needs val_p1, max")
    need(c.search.seeds >= 1, "search.seeds: must be >= 1")
    # Repeater averages a configuration's seeds for Optuna; ASHA stops seeds at different epochs,
    # so that mean would mix epochs (Ray's docs warn against Repeater with early stopping).
    need(c.search.seeds == 1 or c.search.algorithm == "grid" or c.search.scheduler.name != "asha",
         f"search.seeds: {c.search.seeds} seeds with scheduler asha would give Optuna means over different epochs; "
         "use scheduler fifo, or seeds: 1")
    need(c.search.stop_on_collapse is None or c.search.stop_on_collapse >= 1, "search.stop_on_collapse: must be >= 1")
    need(not c.search.stop_early_collapse or c.train.eval_every_steps is not None,
         "search.stop_early_collapse: decides from evaluations within the first epoch; set train.eval_every_steps "
         "(e.g. a third of an epoch's steps)")
    need(c.search.max_failures >= 0, "search.max_failures: must be >= 0")
    need(c.search.checkpoints_to_keep >= 1, "search.checkpoints_to_keep: must be >= 1")
    if c.search.algorithm == "grid":
        for key in ("lr" if c.search.space.lr is not None else "lr_factor", "weight_decay"):
            need(not isinstance(getattr(c.search.space, key), Range), f"search.space.{key}: the grid needs a list of values, not a range")
    need(c.search.mode in ("max", "min"), f"search.mode: expected max or min, got {c.search.mode!r}")
    need(c.search.scheduler.name in ("asha", "fifo"), f"search.scheduler.name: expected asha or fifo, got {c.search.scheduler.name!r}")
    need(c.model.pooling in ("cls", "mean"), f"model.pooling: expected cls or mean, got {c.model.pooling!r}")
    need(c.resources.cpus_per_trial > 0, "resources.cpus_per_trial: must be > 0")
    need(c.resources.gpus_per_trial >= 0, "resources.gpus_per_trial: must be >= 0 (0.5 shares one GPU between two trials)")
    for i, name in enumerate(c.search.space.optimizer):
        need(name in OPTIMIZERS, f"search.space.optimizer[{i}]: unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    need(c.train.optimizer in OPTIMIZERS, f"train.optimizer: unknown optimizer {c.train.optimizer!r}")
    for key, r in (("lr", c.search.space.lr), ("lr_factor", c.search.space.lr_factor), ("weight_decay", c.search.space.weight_decay)):
        if isinstance(r, Range):
            need(r.low <= r.high, f"search.space.{key}: low must be <= high")
            need(not r.log or r.low > 0, f"search.space.{key}: a log range needs low > 0")


def to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain YAML-able values (saved beside the results)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)
