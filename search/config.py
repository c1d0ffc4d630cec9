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

from sweetspot.checks import above, all_of, at_least, check_fields, each, non_empty, one_of, optional, registered, rule, values
from sweetspot.data.config import DataConfig
from sweetspot.layout import LayoutError, check_name
from sweetspot.trainable.config import ModelConfig, TrainConfig, _optimizers


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

    optimizer: tuple[str, ...] = field(default=("adam", "adamw", "amsgrad", "adagrad", "adadelta"),
                                       metadata=rule(all_of(non_empty, each(registered(_optimizers, "optimizer")))))
    lr: Range | tuple[float, ...] | None = field(default=None, metadata=rule(optional(values(above(0.0)))))
    lr_factor: Range | tuple[float, ...] = field(default=Range(1e-3, 10.0), metadata=rule(values(above(0.0))))
    weight_decay: Range | tuple[float, ...] | float = field(default=0.0, metadata=rule(values(at_least(0.0))))


@dataclass(frozen=True)
class SchedulerConfig:
    """Trial scheduler: `asha` (ASHAScheduler on the reported `epoch`, max_t = train.epochs, so
    rungs are epochs whatever `train.eval_every_steps` is) or `fifo` (every trial runs all epochs,
    as the study did)."""

    name: str = field(default="asha", metadata=rule(one_of("asha", "fifo")))
    grace_period: int = field(default=1, metadata=rule(at_least(1)))  # <= train.epochs: _check_together
    reduction_factor: int = field(default=2, metadata=rule(at_least(2)))


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

    algorithm: str = field(default="tpe", metadata=rule(one_of("tpe", "random", "grid", "edges")))
    num_samples: int = field(default=8, metadata=rule(at_least(1)))
    seeds: int = field(default=1, metadata=rule(at_least(1)))
    max_concurrent_trials: int = field(default=2, metadata=rule(at_least(1)))
    metric: str = field(default="val_p1", metadata=rule(non_empty))
    mode: str = field(default="max", metadata=rule(one_of("max", "min")))
    seed: int = 0
    space: SpaceConfig = field(default_factory=SpaceConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    stop_on_collapse: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    stop_early_collapse: bool = False
    stop_on_diverged: bool = True
    max_failures: int = field(default=0, metadata=rule(at_least(0)))
    checkpoints_to_keep: int = field(default=1, metadata=rule(at_least(1)))
    study_storage: str | None = field(default=None, metadata=rule(optional(non_empty)))  # its driver: search/preflight.py


@dataclass(frozen=True)
class ResourcesConfig:
    """Ray resources of one trial."""

    cpus_per_trial: float = field(default=1.0, metadata=rule(above(0.0)))  # what Ray has: search/preflight.py
    gpus_per_trial: float = field(default=0.0, metadata=rule(at_least(0.0)))  # 0.5 shares one GPU between two trials


def _plain_name(name: str) -> str | None:
    """One plain folder name: `..` or `.` would put the results (and --overwrite's delete) outside storage_path."""
    try:
        check_name(name)
    except LayoutError as e:
        return str(e).split(": ", 1)[1]
    return None


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment file. Results go to `<storage_path>/<name>/`."""

    name: str = field(default="sweetspot", metadata=rule(_plain_name))
    storage_path: str = field(default="./results", metadata=rule(non_empty))  # writable: search/preflight.py
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base loader reports an unhashable key
            if key in seen:
                raise ConfigError(f"{key_node.start_mark.line + 1}: key {key!r} given twice (first on line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, where: str) -> Any:
    """`text` as YAML; a syntax error or a repeated key names `where` and the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as e:
        raise ConfigError(f"{where}:{e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None


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
    try:
        node[parts[-1]] = _parse_yaml(text, "value") if text.strip() else None
    except ConfigError as e:
        raise ConfigError(f"--set {assignment!r}: {str(e).split(': ', 1)[-1]} (quote strings that contain YAML "
                          f"syntax: --set '{dotted}=\"...\"')") from None


def load_experiment_dict(raw: Mapping[str, Any] | None) -> ExperimentConfig:
    """Converts a parsed YAML mapping into an `ExperimentConfig`, validating every key."""
    config = _from_mapping(ExperimentConfig, raw, "")
    _check_values(config)
    return config


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Reads an experiment YAML file and applies `--set` overrides.

    Raises:
        ConfigError: naming the file and the dotted key of every problem, one per line.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not an experiment file") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the experiment file: {e.strerror}") from None
    raw = _parse_yaml(text, str(path))
    if raw is None:
        raise ConfigError(f"{path}: empty experiment file (see examples/quickstart.yaml for one)")
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    try:
        for assignment in overrides:
            if not isinstance(raw, dict):
                break
            apply_override(raw, assignment)
        return load_experiment_dict(raw)
    except ConfigError as e:
        raise ConfigError("\n".join(f"{path}: {line}" for line in str(e).splitlines())) from None


def _check_values(c: ExperimentConfig) -> None:
    """Every field's declared rule (`sweetspot.checks`), then the rules that relate two fields;
    all problems at once, one line each."""
    problems = check_fields(c) + _check_together(c)
    if problems:
        raise ConfigError("\n".join(problems))


def _check_together(c: ExperimentConfig) -> list[str]:
    """Rules between fields (each field's own range is declared beside it)."""
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    search, train = c.search, c.train
    need(search.scheduler.name != "asha" or search.scheduler.grace_period <= train.epochs,
         f"search.scheduler.grace_period: {search.scheduler.grace_period} is more than train.epochs ({train.epochs}): "
         "ASHA would stop no trial before its last epoch")
    need(search.algorithm != "edges" or search.scheduler.name == "fifo",
         "search.scheduler.name: the edges search reads every trial at the budget; use fifo (and "
         "search.stop_early_collapse to end doomed trials early)")
    need(search.algorithm != "edges" or search.seeds == 1,
         "search.seeds: the edges search chooses its own seeds (a second one at an edge within the noise); leave it at 1")
    need(search.algorithm != "edges" or search.metric == "val_p1" and search.mode == "max",
         "search.metric: the edges search finds where val_p1 beats the majority-label floor; it needs val_p1, max")
    # Repeater averages a configuration's seeds for Optuna; ASHA stops seeds at different epochs,
    # so that mean would mix epochs (Ray's docs warn against Repeater with early stopping).
    need(search.seeds == 1 or search.algorithm == "grid" or search.scheduler.name != "asha",
         f"search.seeds: {search.seeds} seeds with scheduler asha would give Optuna means over different epochs; "
         "use scheduler fifo, or seeds: 1")
    need(not search.stop_early_collapse or train.eval_every_steps is not None,
         "search.stop_early_collapse: decides from evaluations within the first epoch; set train.eval_every_steps "
         "(e.g. a third of an epoch's steps)")
    if search.algorithm == "grid":
        for key in ("lr" if search.space.lr is not None else "lr_factor", "weight_decay"):
            need(not isinstance(getattr(search.space, key), Range), f"search.space.{key}: the grid needs a list of values, not a range")
    return problems


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
