"""Build, run and resume the Tuner: prepared data -> searcher + scheduler + stoppers -> results.

Ray is started here: embedded and sized to this machine when no address is given, or connected to
a running cluster (`--address auto`, `ray://…`, or `RAY_ADDRESS`).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from sweetspot.data.load import read_split
from sweetspot.data.prepare import Prepared, prepare
from sweetspot import layout, signing, storage
from sweetspot.search.config import ConfigError, ExperimentConfig, load_experiment_dict, to_dict
from sweetspot.search.space import define_by_run, grid, sampler
from sweetspot.trainable import keys
from sweetspot.trainable.model import tokenizer_name

DDP_DRIVER_CPU = 0.01  # what a multi-worker trial's own process holds; Ray refuses 0
STUDY_FILE = "optuna.db"


def experiment_dir(config: ExperimentConfig) -> str:
    """`<storage_path>/<name>`: an absolute local path (Tune runs trials in their own working
    directories) or a storage URI."""
    if storage.is_uri(config.storage_path):
        return storage.join(config.storage_path, config.name)
    return str(Path(config.storage_path).expanduser().resolve() / config.name)


def prepare_data(config: ExperimentConfig) -> Prepared:
    return prepare(config.data, tokenizer=tokenizer_name(config.model.name))


def trial_configs(config: ExperimentConfig) -> list[dict[str, Any]]:
    """The trial configurations of a grid (what `--dry-run` prints)."""
    search = config.search
    if search.algorithm != "grid":
        raise ConfigError(f"search.algorithm: --dry-run lists the trials of a grid; {search.algorithm!r} samples them while it runs")
    return grid(search.space, seeds=search.seeds, first_seed=config.train.seed)


def study_storage_url(config: ExperimentConfig) -> str:
    """Where the Optuna study lives: `search.study_storage`, else `optuna.db` in the results
    folder, else (results on a storage URI: SQLite needs a local file) a file beside the driver
    named by the whole results location, so two experiments of one name never share a study."""
    if config.search.study_storage:
        return config.search.study_storage
    folder = experiment_dir(config)
    if storage.is_uri(folder):
        digest = hashlib.sha256(folder.encode()).hexdigest()[:12]
        local = Path.home() / ".cache" / "sweetspot" / "optuna" / f"{config.name}-{digest}.db"
        local.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{local}"
    return f"sqlite:///{Path(folder) / STUDY_FILE}"


def _study_elsewhere(config: ExperimentConfig) -> str | None:
    """The study's storage URL when the study lives outside the results folder (`search.study_storage`,
    or results on a URI); `None` when it is the folder's own `optuna.db`, or there is none (grid)."""
    if config.search.algorithm == "grid" or not (config.search.study_storage or storage.is_uri(experiment_dir(config))):
        return None
    return study_storage_url(config)


def _study_exists(config: ExperimentConfig, url: str) -> bool:
    import optuna

    from sweetspot.search.study import connect_url

    return config.name in optuna.get_all_study_names(storage=connect_url(url))


def _init_ray(address: str | None, dashboard: bool) -> None:
    import ray

    if ray.is_initialized():
        return
    where = f"--address {address}" if address else f"RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}"
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address)
        except (ConnectionError, ray.exceptions.AuthenticationError) as e:
            raise ConfigError(f"{where}: cannot join the Ray cluster: {_join_failure(e)}") from None
    else:  # embedded local Ray, sized to this machine
        # address="local": a new instance even when a `ray start` cluster runs on this machine
        # (ray.init() without an address would join it).
        # The dashboard's processes take CPU from the trials (measured: ~5% of a 2-core machine's
        # training throughput), so a local run starts it only when asked.
        _loopback_only()
        ray.init(address="local", num_cpus=os.cpu_count(), log_to_driver=True, include_dashboard=dashboard)


def _loopback_only() -> None:
    """Makes the embedded Ray listen on 127.0.0.1 only. On Linux, Ray takes this machine's
    routable address as the node's and its gRPC servers (GCS, raylet, workers, agents) listen on
    every interface: anyone on the network could reach them. With Ray's single-machine mode
    (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, its default on macOS and Windows) the node's address is
    127.0.0.1 and every server listens there. Ray reads the setting when it is imported (this
    driver already has), hence the constant too; the processes it starts read the environment."""
    import ray._private.ray_constants as ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _join_failure(error: BaseException) -> str:
    """Why `ray.init(address=…)` failed, in one line. A token the cluster refuses reaches us only as
    text inside a RuntimeError inside the ConnectionError; a missing token as an AuthenticationError."""
    import ray

    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    hint = "a cluster with token authentication needs RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or $RAY_AUTH_TOKEN"
    for e in chain:
        if isinstance(e, ray.exceptions.AuthenticationError):
            return f"{str(e).split('. ')[0]} ({hint})"
    if any("InvalidAuthToken" in str(e) for e in chain):
        return f"the cluster refused this client's token, or it got none ({hint})"
    return str(chain[0]).splitlines()[0]


# What sweetspot.yaml records beside the config: where the run's prepared data and study are, and
# the prepared data's fingerprint. None of it is part of the config a resume compares.
RECORDED = ("prepared_path", "prepared_data", "optuna_storage")


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved config without what may legitimately differ between a run and its resume."""
    return {k: v for k, v in resolved.items() if k not in ("storage_path", *RECORDED)}


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _check_resumable(config: ExperimentConfig, folder: str, *, trust_folder: bool = False) -> dict[str, Any]:
    """The folder's saved config, when it holds an experiment of this config to resume whose Tune
    state this user's sweetspot signed (`sweetspot.signing`), or `trust_folder`."""
    import ray.tune

    config_file = storage.join(folder, layout.CONFIG_FILE)
    if not storage.exists(config_file) or not ray.tune.Tuner.can_restore(folder):
        raise ConfigError(f"{folder}: holds no experiment to resume")
    if not trust_folder:
        try:
            signing.verify(folder)
        except signing.SigningError as e:
            raise ConfigError(str(e)) from None
    saved = yaml.safe_load(storage.read_text(config_file))
    differ = _differences(_comparable(saved), _comparable(to_dict(config)))
    if differ:
        raise ConfigError(f"{folder}: holds an experiment from a different config (differs in: {', '.join(differ)})")
    return saved


def _data_record(prepared: Prepared) -> dict[str, Any]:
    """What identifies the prepared data: its cache key and what the key covers that a config
    does not show (the input files' content hashes, the tokenizer's fingerprint)."""
    m = prepared.manifest
    return {"key": m["key"], "inputs": m["inputs"], "tokenizer": m["tokenizer"]["fingerprint"]}


def _check_same_data(folder: str, saved: dict[str, Any], prepared: Prepared) -> None:
    """Refuses to resume on other data than the search started on (the same config over changed
    input files): the remaining trials would train on it, and the trials would not compare."""
    before, now = saved.get("prepared_data"), _data_record(prepared)
    if before is None:  # recorded before the fingerprint was: the prepared folder's name ends in the key
        old_key, changed = Path(str(saved.get("prepared_path"))).name.rsplit("-", 1)[-1], []
    else:
        # An input's fingerprint is "<file name>:sha256:<content hash>": name the files that changed.
        old_key = before["key"]
        changed = [str(f).split(":")[0] for role, f in now["inputs"].items() if before["inputs"].get(role) != f]
        changed += ["the tokenizer"] if before["tokenizer"] != now["tokenizer"] else []
    if now["key"][:12] != old_key[:12]:
        raise ConfigError(f"{folder}: the data changed since this search started (changed: {', '.join(changed) or 'the prepared data'}; "
                          f"prepared key {old_key[:12]} in {layout.CONFIG_FILE}, {now['key'][:12]} now): resuming would "
                          f"train the remaining trials on other data; start a new search instead")


def _local_path(location: str) -> Path | None:
    """A local path or `file://` URI as a path; `None` for an object store."""
    if not storage.is_uri(location):
        return Path(location).expanduser()
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _delete_results(config: ExperimentConfig, folder: str) -> None:
    """Deletes the results folder `<storage_path>/<name>` and provably nothing outside it: `name`
    is one plain folder name, and on a local disk the folder's real path (links resolved) must be
    exactly `<real storage_path>/<name>`."""
    name = layout.check_name(config.name)
    target, parent = _local_path(folder), _local_path(config.storage_path)
    if target is not None and parent is not None:
        inside = target.resolve() == parent.resolve() / name
    else:
        inside = folder == storage.join(config.storage_path, name)
    if not inside:
        where = target.resolve() if target is not None else folder
        raise ConfigError(f"{folder}: not deleted: it is {where}, not the folder {name!r} inside storage_path {config.storage_path}")
    storage.delete_dir(folder)


def _trainable(config: ExperimentConfig, prepared: Prepared):
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
    return {"budget_epochs": train.epochs, "entropy_fraction": train.collapse_entropy_fraction,
            "p1_margin": train.collapse_p1_margin}


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
        searcher, num_samples = BasicVariantGenerator(points_to_evaluate=configs, max_concurrent=search.max_concurrent_trials), len(configs)
        param_space = {key: None for key in configs[0]}  # the keys the points fill in
    elif search.algorithm == "edges":
        searcher, num_samples = _edge_search(config), search.num_samples
    else:
        # A define-by-run space fixes the Optuna study at construction, and Tune never forwards
        # TuneConfig's metric/mode to it (it skips set_search_properties for an empty
        # param_space), so this searcher is the one place besides TuneConfig that is told them.
        searcher = OptunaSearch(space=define_by_run(search.space), sampler=sampler(search.algorithm, search.seed),
                                metric=search.metric, mode=search.mode,
                                storage=StudyStorage(study_storage_url(config)), study_name=config.name)
        if search.seeds > 1:  # every sampled configuration runs with `seeds` seeds; Optuna sees their mean
            searcher = Repeater(searcher, repeat=search.seeds)
        num_samples = search.num_samples * search.seeds
    if search.scheduler.name == "asha":
        # Rungs and max_t in epochs, read from the reported `epoch` (fractional with
        # train.eval_every_steps): training_iteration counts reports, not epochs.
        scheduler = ASHAScheduler(time_attr=keys.EPOCH, max_t=config.train.epochs,
                                  grace_period=search.scheduler.grace_period, reduction_factor=search.scheduler.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    early = early_collapse_rule(config)
    stoppers = ([DivergedStopper()] if search.stop_on_diverged else []) + \
               ([CollapseStopper(search.stop_on_collapse)] if search.stop_on_collapse else []) + \
               ([EarlyCollapseStopper(**early)] if early else [])
    return SearchComponents(searcher=searcher, scheduler=scheduler, stoppers=stoppers, num_samples=num_samples,
                            param_space=param_space, grid=configs)


def _edge_search(config: ExperimentConfig):
    """The region search (search/edges.py) over the experiment's space."""
    from sweetspot.search.config import Range
    from sweetspot.search.edges import EdgeSearch

    space, search, train = config.search.space, config.search, config.train

    def bounds(value) -> tuple[float, float]:
        values = (value.low, value.high) if isinstance(value, Range) else (min(value), max(value))
        return float(values[0]), float(values[1])

    decays = space.weight_decay if isinstance(space.weight_decay, tuple) else (space.weight_decay,)
    if isinstance(space.weight_decay, Range):
        raise ConfigError("search.space.weight_decay: the edges search takes a list of weight decays (edges per decay), not a range")
    return EdgeSearch(optimizers=space.optimizer, epochs=train.epochs,
                      lr=bounds(space.lr) if space.lr is not None else None, lr_factor=bounds(space.lr_factor),
                      weight_decays=[float(d) for d in decays], max_trials=search.num_samples, first_seed=train.seed,
                      margin=train.collapse_p1_margin, collapse_patience=search.stop_on_collapse,
                      early_collapse=early_collapse_rule(config))


def build_tuner(config: ExperimentConfig, trainable, folder: str):
    """The Tuner of a new search: `search_components`, the run records and the results folder."""
    from ray import tune
    from ray.tune.stopper import CombinedStopper

    from sweetspot.search.checkpoints import ResumeFromNewestCheckpoint
    from sweetspot.search.live import InterruptWatch
    from sweetspot.search.records import SummaryCallback
    from sweetspot.search.signed_state import SignStateCallback

    search = config.search
    parts = search_components(config)
    return tune.Tuner(
        trainable,
        param_space=parts.param_space,
        tune_config=tune.TuneConfig(
            metric=search.metric, mode=search.mode, search_alg=parts.searcher, scheduler=parts.scheduler,
            num_samples=parts.num_samples,
            max_concurrent_trials=None if search.algorithm == "grid" else search.max_concurrent_trials,
            trial_dirname_creator=_trial_dirname,
            # A new trial reuses a finished trial's worker process: no process start and no
            # re-import of torch and transformers (about 2.5 s a trial on this machine).
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=config.name,
            storage_path=folder.rsplit("/", 1)[0] if storage.is_uri(folder) else str(Path(folder).parent),
            stop=CombinedStopper(*parts.stoppers) if parts.stoppers else None,
            failure_config=tune.FailureConfig(max_failures=search.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=search.checkpoints_to_keep),
            callbacks=[SummaryCallback(folder, metric=search.metric, mode=search.mode, max_epochs=config.train.epochs,
                                       collapse_patience=search.stop_on_collapse, early_collapse=early_collapse_rule(config)),
                       ResumeFromNewestCheckpoint(), SignStateCallback(), InterruptWatch()],
        ),
    )


def _trial_dirname(trial) -> str:
    return layout.trial_folder(trial.trial_id)


def run_search(config: ExperimentConfig, *, address: str | None = None, overwrite: bool = False,
               dashboard: bool = False, resume: bool = False, retry_errored: bool = False,
               trust_folder: bool = False, report_every: float | None = None) -> str:
    """Runs the experiment (or resumes it) and returns its results folder. A resume refuses a
    folder whose Tune state does not verify (`sweetspot.signing`) unless `trust_folder`.
    `report_every`: refresh the report that often (seconds) while it runs (search/live.py)."""
    import ray
    from ray import tune

    folder = experiment_dir(config)
    replace = False
    study_elsewhere = None if resume else _study_elsewhere(config)
    try:
        signing.signing_key()  # made (or found unusable) before the run, not at its first save
    except signing.SigningError as e:
        raise ConfigError(str(e)) from None
    if config.search.study_storage:
        from sweetspot.search.study import check_no_secret

        check_no_secret(config.search.study_storage)
    if resume:
        saved = _check_resumable(config, folder, trust_folder=trust_folder)
    elif not storage.is_empty_dir(folder):
        if not overwrite:
            raise ConfigError(f"{folder}: already holds results (use another `name`, --resume to continue them, "
                              f"or --overwrite to replace them)")
        replace = True
    if study_elsewhere and not overwrite and _study_exists(config, study_elsewhere):
        # A new search must not silently continue an old study's trials.
        raise ConfigError(f"{study_elsewhere}: already holds an Optuna study named {config.name!r} (use another `name`, "
                          f"or --overwrite to start a new study)")

    prepared = prepare_data(config)
    if resume:
        _check_same_data(folder, saved, prepared)
    # Before the first write or delete: bad data or a cluster that refuses us changes no folder.
    started = not ray.is_initialized()
    _init_ray(address, dashboard)
    if address or os.environ.get("RAY_ADDRESS"):  # a cluster: can any node hold a trial?
        from sweetspot.search.preflight import check_cluster_resources

        waiting = check_cluster_resources(config)
        if waiting:
            print(waiting, file=sys.stderr, flush=True)
    if replace:
        _delete_results(config, folder)
    if study_elsewhere and overwrite and _study_exists(config, study_elsewhere):
        import optuna

        from sweetspot.search.study import connect_url

        optuna.delete_study(study_name=config.name, storage=connect_url(study_elsewhere))
    if not resume:
        resolved = {**to_dict(config), "prepared_path": str(prepared.path), "prepared_data": _data_record(prepared),
                    "optuna_storage": None if config.search.algorithm == "grid" else study_storage_url(config)}
        storage.write_text(storage.join(folder, layout.CONFIG_FILE), yaml.safe_dump(resolved, sort_keys=False))

    ray.data.DataContext.get_current().enable_progress_bars = False  # a bar per trial per epoch is noise
    trainable = _trainable(config, prepared)
    if resume:
        tuner = tune.Tuner.restore(folder, trainable=trainable, resume_unfinished=True, resume_errored=retry_errored)
    else:
        tuner = build_tuner(config, trainable, folder)
    from sweetspot.search.live import LiveRun

    try:
        with LiveRun(folder, report_every=report_every):  # run.json (running -> finished / interrupted), the refresh
            interrupted = _fit(tuner)
        if interrupted:
            _mark_interrupted(folder)
            raise SearchInterrupted(folder)
        if config.search.algorithm in ("tpe", "random"):
            _fail_orphaned_trials(config)
    finally:
        if resume and trust_folder:  # the user vouched for this folder; a run from before signing has no SignStateCallback
            signing.sign(folder)
        if started:  # our own Ray: shut it down before the interpreter exits (else its C++ threads may
            ray.shutdown()  # print "Check failed ... Broken pipe" while they are torn down)
    return folder


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped `tuner.fit()`; Tune saved the experiment, which `folder` resumes."""

    def __init__(self, folder: str):
        super().__init__(folder)
        self.folder = folder


def _fit(tuner) -> bool:
    """Runs the Tuner; `True` when Ctrl-C ended it. Tune catches the first SIGINT itself (it stops the
    trials, saves the experiment and returns normally), and its handler then puts the one it found
    back: that is how the interruption is seen here."""
    import signal
    import threading

    before = signal.getsignal(signal.SIGINT)
    tuner.fit()
    catches = threading.current_thread() is threading.main_thread() and not int(os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0"))
    return catches and signal.getsignal(signal.SIGINT) is before


def _mark_interrupted(folder: str) -> None:
    """Records the trials Ctrl-C stopped as `interrupted` in summary.json (Tune ends them as if
    finished, which the records would read as `early_stopped`): the trials that Tune's saved
    experiment holds unfinished, which a resume continues."""
    import json

    from ray.tune import ExperimentAnalysis

    unfinished = {t.trial_id for t in ExperimentAnalysis(folder).trials if t.status not in ("TERMINATED", "ERROR")}
    summary_file = storage.join(folder, layout.SUMMARY_FILE)
    summary = layout.read_summary(storage.read_text(summary_file) or "", where=summary_file)
    for record in summary["trials"]:
        if record["trial_id"] in unfinished:
            record["status"], record["error"] = layout.INTERRUPTED, None
    storage.write_text(summary_file, json.dumps(summary, indent=1, default=str))


def _fail_orphaned_trials(config: ExperimentConfig) -> None:
    """After a search that ran to its end, every trial Optuna handed out has been told its result,
    except those asked for after the last state Tune saved before a killed driver: no trial will
    ever report them, so they are marked failed instead of staying RUNNING in the study forever."""
    import optuna
    from optuna.trial import TrialState

    url = study_storage_url(config)
    if not _study_exists(config, url):
        return
    from sweetspot.search.study import connect_url

    study = optuna.load_study(study_name=config.name, storage=connect_url(url))  # `${VAR}`s expanded to connect
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)


def load_saved_config(folder: str) -> ExperimentConfig:
    """The experiment config saved in a results folder (for `sweetspot resume`)."""
    config_file = storage.join(folder, layout.CONFIG_FILE)
    if not storage.exists(config_file):
        raise ConfigError(f"{folder}: holds no experiment to resume (no {layout.CONFIG_FILE})")
    saved = yaml.safe_load(storage.read_text(config_file))
    for key in RECORDED:
        saved.pop(key, None)
    location = folder.rstrip("/")
    saved["storage_path"] = location.rsplit("/", 1)[0] if storage.is_uri(location) else str(Path(location).resolve().parent)
    saved["name"] = location.rsplit("/", 1)[1] if storage.is_uri(location) else Path(location).resolve().name
    return load_experiment_dict(saved)
