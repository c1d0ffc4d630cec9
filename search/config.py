"""Experiment files: YAML -> typed frozen dataclasses, converted and validated once.

An unknown key or a value of the wrong type fails with the key's dotted name:

    >>> try:
    ...     load_experiment_dict({"train": {"epochs": "three"}})
    ... except ConfigError as e:
    ...     print(e)
    train.epochs: expected int, got 'three'

Over 400 lines on purpose: every experiment field with its range declared beside it (one typed config,
converted once); the fields are the length.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweetspot.checks import (
    above,
    all_of,
    at_least,
    between,
    check_fields,
    did_you_mean,
    each,
    non_empty,
    one_of,
    optional,
    registered,
    rule,
    values,
)
from sweetspot.data.config import DataConfig
from sweetspot.layout import LayoutError, check_name
from sweetspot.trainable import keys
from sweetspot.trainable.config import ModelConfig, TrainConfig, _optimizers


class ConfigError(ValueError):
    """A bad experiment file or override; the message starts with the dotted key."""


# Hard limits on what an experiment file may ask of the machine before anything is checked: an
# experiment is a few dozen keys, a grid a few thousand trials.
MAX_FILE_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000  # values after alias expansion (a "billion laughs" file of nested aliases)
MAX_YAML_DEPTH = 64
MAX_TRIALS = 100_000  # a grid's trials, `num_samples` x `seeds`
MAX_SEEDS = 1000
MAX_SEED = 2**32 - 1  # numpy's and Optuna's samplers take seeds in [0, 2**32)
# The fields that name a path or a model, where `${VAR}` is expanded from the environment when the
# file is read (a study URL keeps its `${VAR}`s until it connects: it may hold a password).
PATH_FIELDS = ("storage_path", "data.path", "data.cache_dir", "data.files", "data.tokenizer", "model.name")


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

    optimizer: tuple[str, ...] = field(
        default=("adam", "adamw", "amsgrad", "adagrad", "adadelta"),
        metadata=rule(all_of(non_empty, each(registered(_optimizers, "optimizer")))),
    )
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
class EdgesConfig:
    """The region search's settings (`search.algorithm: edges`, search/edges.py); recorded with the
    run in sweetspot.yaml, and `sweetspot analyze` reads `delta` as its default δ.

    Attributes:
        delta: δ of the level (1 + δ)·F a score must reach to qualify (trainable/score.py).
        resolution: Decades; a bracket (a qualifying and a non-qualifying lr side by side) this
            narrow is resolved. 0.5 is the ground-truth tables' lr spacing; each halving costs one
            more trial per edge.
        probes: lrs first sampled per line (optimizer, weight decay): the centres of this many equal
            cells of the lr range in log10.
        seeds: The most seeds one lr is run with (extra seeds go only where the noise decides a verdict).
        noise: Prior seed-to-seed standard deviation of val_p1, before any lr was measured twice.
        relatives: A line whose optimizer has a relative in the search (AMSGrad, AdamW: Adam) probes
            first at the relative's edges once the relative's line is settled.
        twins: A line whose updates equal another line's exactly (AdamW at weight decay 0 is Adam,
            `trainable.optimizers.twin`) is not run: it is reported as its twin's.
    """

    delta: float = field(default=0.02, metadata=rule(at_least(0.0)))
    resolution: float = field(default=0.5, metadata=rule(above(0.0)))
    probes: int = field(default=4, metadata=rule(at_least(2)))
    seeds: int = field(default=2, metadata=rule(at_least(1)))
    noise: float = field(default=0.02, metadata=rule(at_least(0.0)))
    relatives: bool = True
    twins: bool = True


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
        stop_early_collapse: End a trial within the first half of its budget once the early collapse rule
            (`trainable.collapse.early_verdict`) calls it doomed: collapsed onto the label prior, or
            too slow to leave the floor within `train.epochs`. Needs `train.eval_every_steps`.
        stop_on_diverged: End a trial whose loss became NaN or inf (it also ends itself).
        max_failures: Retries of a failed trial, each from its last checkpoint.
        checkpoints_to_keep: A trial's best checkpoints kept, by the score (trainable/score.py); its
            latest is kept besides, for a resume, and only it keeps optimizer state: the default 1
            keeps at most two checkpoints a trial.
        edges: The region search's settings (`EdgesConfig`), read when `algorithm` is `edges`.
        study_storage: Where the Optuna study lives: an RDB URL (`postgresql://...`,
            `sqlite:///...`); `None` means `sqlite:///<results folder>/optuna.db` (or, when the
            results go to a storage URI, `~/.cache/sweetspot/optuna/<name>-<hash of the results
            URI>.db`, recorded in `sweetspot.yaml` as `optuna_storage`).
    """

    algorithm: str = field(default="tpe", metadata=rule(one_of("tpe", "random", "grid", "edges")))
    num_samples: int = field(default=8, metadata=rule(between(1, MAX_TRIALS, include_high=True)))
    seeds: int = field(default=1, metadata=rule(between(1, MAX_SEEDS, include_high=True)))
    max_concurrent_trials: int = field(default=2, metadata=rule(at_least(1)))
    metric: str = field(default="val_p1", metadata=rule(non_empty))
    mode: str = field(default="max", metadata=rule(one_of("max", "min")))
    seed: int = field(default=0, metadata=rule(between(0, MAX_SEED, include_high=True)))
    space: SpaceConfig = field(default_factory=SpaceConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    stop_on_collapse: int | None = field(default=None, metadata=rule(optional(at_least(1))))
    stop_early_collapse: bool = False
    stop_on_diverged: bool = True
    max_failures: int = field(default=0, metadata=rule(at_least(0)))
    checkpoints_to_keep: int = field(default=1, metadata=rule(at_least(1)))
    study_storage: str | None = field(default=None, metadata=rule(optional(non_empty)))  # its driver: search/preflight.py
    edges: EdgesConfig = field(default_factory=EdgesConfig)


@dataclass(frozen=True)
class ResourcesConfig:
    """Ray resources of one trial."""

    cpus_per_trial: float = field(default=1.0, metadata=rule(above(0.0)))  # what Ray has: search/preflight.py
    gpus_per_trial: float = field(default=0.0, metadata=rule(at_least(0.0)))  # 0.5 shares one GPU between two trials


@dataclass(frozen=True)
class MlflowConfig:
    """`callbacks: [mlflow]`: each trial is an MLflow run (Ray Tune's MLflowLoggerCallback; `pip install
    sweetspot[mlflow]`).

    Attributes:
        tracking_uri: The MLflow tracking server or store; `None`: `$MLFLOW_TRACKING_URI`, else a SQLite
            store `mlflow.db` in the results folder (`mlflow ui --backend-store-uri sqlite:///<results>/mlflow.db`).
        experiment_name: The MLflow experiment; `None`: the experiment's `name`.
        tags: Tags set on every run.
    """

    tracking_uri: str | None = field(default=None, metadata=rule(optional(non_empty)))
    experiment_name: str | None = field(default=None, metadata=rule(optional(non_empty)))
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class WandbConfig:
    """`callbacks: [wandb]`: each trial is a Weights & Biases run (Ray Tune's WandbLoggerCallback; `pip install
    sweetspot[wandb]`; the API key from `wandb login` or `$WANDB_API_KEY`, never from this file).

    Attributes:
        project: The W&B project; `None`: the experiment's `name`.
        group: The run group; `None`: the experiment's `name`.
        entity: The W&B team or user; `None`: the key's default.
        mode: `online`, `offline` (runs written under the results folder, `wandb sync` later) or `disabled`.
    """

    project: str | None = field(default=None, metadata=rule(optional(non_empty)))
    group: str | None = field(default=None, metadata=rule(optional(non_empty)))
    entity: str | None = field(default=None, metadata=rule(optional(non_empty)))
    mode: str = field(default="online", metadata=rule(one_of("online", "offline", "disabled")))


CALLBACKS = ("mlflow", "wandb")  # the names `callbacks` takes: search/callbacks.py maps them to Tune's callbacks


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
    callbacks: tuple[str, ...] = field(default=(), metadata=rule(each(one_of(*CALLBACKS))))  # experiment trackers
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


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
            raise ConfigError(f"{dotted}: unknown key{did_you_mean(str(k), names)} (known under {where}: {', '.join(names)})")
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
    """`text` as YAML; a syntax error or a repeated key names `where` and the line. A document that
    nests deeper than `MAX_YAML_DEPTH` or expands (aliases counted each time they are used) to more
    than `MAX_YAML_VALUES` values is refused before it is built."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where)
        return loader.construct_document(node)
    except ConfigError as e:
        raise ConfigError(f"{where}:{e}" if str(e)[:1].isdigit() else str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except RecursionError:
        raise ConfigError(
            f"{where}: nested deeper than {MAX_YAML_DEPTH} levels; an experiment file is a few levels deep"
        ) from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Counts the values `root` stands for once every alias is expanded, each node once (a DAG walk)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, height)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(
                f"{where}:{node.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels; "
                f"an experiment file is a few levels deep"
            )
        size, height = 1, 0
        children = node.value if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else []
        for child in children:
            for part in child if isinstance(child, tuple) else (child,):
                n, h = measure(part, depth + 1)
                size, height = size + n, max(height, h + 1)
            if size > MAX_YAML_VALUES:
                raise ConfigError(
                    f"{where}: expands to more than {MAX_YAML_VALUES:,} values (aliases of aliases); "
                    f"an experiment file is a few dozen keys"
                )
        sizes[id(node)] = (size, height)
        return size, height

    measure(root, 0)


def parse_yaml_bytes(data: bytes, where: str) -> Any:
    """YAML bytes (an experiment file, a saved `sweetspot.yaml`) under the same limits as an experiment file."""
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: {len(data):,} bytes, more than an experiment file's limit of {MAX_FILE_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{where}:{line}: not valid UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8") from None
    return _parse_yaml(text, where)


def _read_config_file(path: Path) -> bytes:
    """The file's bytes, at most `MAX_FILE_BYTES` + 1 of them, from a regular file only: a device
    (`/dev/zero`), a FIFO or a socket would never end. Opened without blocking and checked by the
    descriptor, so nothing swapped in after a check is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not an experiment file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the experiment file: {e.strerror}") from None
    mode = os.fstat(fd).st_mode  # before fdopen, which refuses a folder's descriptor itself
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: is a folder, not an experiment file")
        raise ConfigError(f"{path}: not a regular file (a device, FIFO or socket); give an experiment YAML file")
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the experiment file: {e.strerror}") from None


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
        raise ConfigError(
            f"--set {assignment!r}: {str(e).split(': ', 1)[-1]} (quote strings that contain YAML "
            f"syntax: --set '{dotted}=\"...\"')"
        ) from None


def load_experiment_dict(raw: Mapping[str, Any] | None) -> ExperimentConfig:
    """Converts a parsed YAML mapping into an `ExperimentConfig`, validating every key; `${VAR}` in
    the `PATH_FIELDS` is expanded from the environment."""
    config = _expand_paths(_from_mapping(ExperimentConfig, raw, ""))
    _check_values(config)
    return config


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Reads an experiment YAML file and applies `--set` overrides.

    Raises:
        ConfigError: naming the file and the dotted key of every problem, one per line.
    """
    path = Path(path)
    data = _read_config_file(path)
    raw = parse_yaml_bytes(data, str(path))
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


def _expand(value: str, key: str) -> str:
    from sweetspot.redact import expand

    try:
        return expand(value, key=key)
    except KeyError as e:
        raise ConfigError(e.args[0]) from None


def _expand_paths(c: ExperimentConfig) -> ExperimentConfig:
    """`c` with `${VAR}` expanded in every field that names a path or a model (`PATH_FIELDS`); a `$`
    left over after that (an unclosed `${`, `${1}`) is refused rather than taken as a folder name."""

    def one(value: str | None, key: str) -> str | None:
        if value is None:
            return None
        out = _expand(value, key)
        if "${" in out:
            raise ConfigError(f"{key}: {value!r}: write environment variables as ${{VAR}} (set in the environment)")
        return out

    data = dataclasses.replace(
        c.data,
        path=one(c.data.path, "data.path"),
        cache_dir=one(c.data.cache_dir, "data.cache_dir"),
        tokenizer=one(c.data.tokenizer, "data.tokenizer"),
        files={k: one(v, f"data.files.{k}") for k, v in c.data.files.items()},
    )
    return dataclasses.replace(
        c,
        storage_path=one(c.storage_path, "storage_path"),
        data=data,
        model=dataclasses.replace(c.model, name=one(c.model.name, "model.name")),
    )


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
    need(
        search.scheduler.name != "asha" or search.scheduler.grace_period <= train.epochs,
        f"search.scheduler.grace_period: {search.scheduler.grace_period} is more than train.epochs ({train.epochs}): "
        "ASHA would stop no trial before its last epoch",
    )
    need(
        search.algorithm != "edges" or search.scheduler.name == "fifo",
        "search.scheduler.name: the edges search reads every trial at the budget; use fifo (and "
        "search.stop_early_collapse to end doomed trials early)",
    )
    need(
        search.algorithm != "edges" or search.seeds == 1,
        "search.seeds: the edges search chooses its own seeds (a second one at an edge within the noise); leave it at 1",
    )
    need(
        search.algorithm != "edges" or search.metric == "val_p1" and search.mode == "max",
        "search.metric: the edges search finds where val_p1 beats the majority-label floor; it needs val_p1, max",
    )
    # Repeater averages a configuration's seeds for Optuna; ASHA stops seeds at different epochs,
    # so that mean would mix epochs (Ray's docs warn against Repeater with early stopping).
    need(
        search.seeds == 1 or search.algorithm == "grid" or search.scheduler.name != "asha",
        f"search.seeds: {search.seeds} seeds with scheduler asha would give Optuna means over different epochs; "
        "use scheduler fifo, or seeds: 1",
    )
    reported = keys.REPORTED + (keys.TEST_KEYS if train.eval_test else ())
    need(
        search.metric in reported,
        f"search.metric: {search.metric!r} is not a result a trial reports "
        f"(e.g. val_p1, val_loss, val_micro_f1{', test_p1' if train.eval_test else ''})",
    )
    need(
        not search.stop_early_collapse or train.eval_every_steps is not None,
        "search.stop_early_collapse: decides from evaluations within the first epoch; set train.eval_every_steps "
        "(e.g. a third of an epoch's steps)",
    )
    if search.algorithm == "grid":
        for key in ("lr" if search.space.lr is not None else "lr_factor", "weight_decay"):
            need(
                not isinstance(getattr(search.space, key), Range),
                f"search.space.{key}: the grid needs a list of values, not a range",
            )
        trials = _grid_size(search)
        need(
            trials <= MAX_TRIALS,
            f"search: the grid has {trials:,} trials (optimizers x learning rates x weight decays x "
            f"seeds), more than {MAX_TRIALS:,}; split it into several experiments",
        )
    else:
        need(
            search.num_samples * search.seeds <= MAX_TRIALS,
            f"search.num_samples: {search.num_samples:,} x {search.seeds} seeds is more than {MAX_TRIALS:,} trials",
        )
    need(train.seed + search.seeds - 1 <= MAX_SEED, f"train.seed: {train.seed} + {search.seeds} seeds goes past {MAX_SEED}")
    return problems


def _grid_size(search: SearchConfig) -> int:
    """The grid's trial count, multiplied out without building it."""

    def count(v: Any) -> int:
        return len(v) if isinstance(v, tuple) else 1

    rates = count(search.space.lr if search.space.lr is not None else search.space.lr_factor)
    return len(search.space.optimizer) * rates * count(search.space.weight_decay) * search.seeds


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
