"""`sweetspot search` and `resume`, start to end: checks -> prepared data -> Ray -> the results folder -> the
Tuner (new or restored) -> fit -> the interruption or the study's housekeeping.

The jobs live in modules named for them: results_folder (where, safe delete), study_url (the Optuna study),
ray_start (embedded or joined Ray), resume (what a resume checks), trials (the trainable), components
(searcher, scheduler, stoppers), tuner (the Tuner and fit). The names other packages use are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid

import yaml

from sweetspot import layout, signing, storage
from sweetspot.data.prepare import Prepared, prepare
from sweetspot.search.components import SearchComponents, early_collapse_rule, search_components, trial_configs
from sweetspot.search.config import ConfigError, ExperimentConfig, to_dict
from sweetspot.search.ray_start import init_ray, usable_cpus
from sweetspot.search.results_folder import delete_results, experiment_dir, folder_lock
from sweetspot.search.resume import (
    check_resumable,
    check_same_data,
    data_record,
    load_saved_config,
    mark_interrupted,
    set_aside_lost_trials,
    unfinished_trials,
)
from sweetspot.search.study_url import fail_orphaned_trials, study_elsewhere, study_exists, study_storage_url
from sweetspot.search.trials import make_trainable
from sweetspot.search.tuner import SearchInterrupted, build_tuner, catch_sigterm, fit
from sweetspot.trainable.model import tokenizer_name

__all__ = [
    "SearchComponents",
    "SearchInterrupted",
    "build_tuner",
    "early_collapse_rule",
    "experiment_dir",
    "load_saved_config",
    "prepare_data",
    "run_search",
    "search_components",
    "study_storage_url",
    "trial_configs",
]


def prepare_data(config: ExperimentConfig) -> Prepared:
    return prepare(config.data, tokenizer=tokenizer_name(config.model.name))


def run_search(
    config: ExperimentConfig,
    *,
    address: str | None = None,
    overwrite: bool = False,
    dashboard: bool = False,
    resume: bool = False,
    retry_errored: bool = False,
    trust_folder: bool = False,
    report_every: float | None = None,
    console=None,
) -> str:
    """Runs the experiment (or resumes it) and returns its results folder. A resume refuses a
    folder whose Tune state does not verify (`sweetspot.signing`) unless `trust_folder`.
    `report_every`: refresh the report that often (seconds) while it runs (search/live.py).
    `console` (search/console.Console): the plan, a line per finished trial, the progress; None: Tune's own output."""
    folder = experiment_dir(config)
    try:
        signing.signing_key()  # made (or found unusable) before the run, not at its first save
    except signing.SigningError as e:
        raise ConfigError(str(e)) from None
    with folder_lock(folder):
        try:
            return _run_locked(
                config,
                folder,
                address=address,
                overwrite=overwrite,
                dashboard=dashboard,
                resume=resume,
                retry_errored=retry_errored,
                trust_folder=trust_folder,
                report_every=report_every,
                console=console,
            )
        except OSError as e:  # a full disk, a folder that turned read-only: one line, not a traceback
            raise ConfigError(
                f"{folder}: cannot write the results: {e.strerror or e} ({getattr(e, 'filename', None) or folder})"
            ) from None


def _run_locked(
    config: ExperimentConfig,
    folder: str,
    *,
    address: str | None,
    overwrite: bool,
    dashboard: bool,
    resume: bool,
    retry_errored: bool,
    trust_folder: bool,
    report_every: float | None,
    console=None,
) -> str:
    import ray

    replace = False
    elsewhere = None if resume else study_elsewhere(config)
    if config.search.study_storage:
        from sweetspot.search.study import check_no_secret

        check_no_secret(config.search.study_storage)
    verified: dict[str, bytes] = {}
    run_id: str | None = None
    if resume:
        saved, verified = check_resumable(config, folder, trust_folder=trust_folder)
        run_id = saved.get("run_id")
    elif not storage.is_empty_dir(folder):
        if not overwrite:
            raise ConfigError(
                f"{folder}: already holds results (use another `name`, --resume to continue them, or --overwrite to replace them)"
            )
        replace = True
    if elsewhere and not overwrite and study_exists(config, elsewhere):
        # A new search must not silently continue an old study's trials.
        raise ConfigError(
            f"{elsewhere}: already holds an Optuna study named {config.name!r} (use another `name`, "
            f"or --overwrite to start a new study)"
        )

    prepared = prepare_data(config)
    if resume:
        check_same_data(folder, saved, prepared)
    if console:
        from sweetspot.search.console import plan_lines

        console.quiet_ray()
        for line in plan_lines(config, folder=folder, manifest=prepared.manifest, cpus=usable_cpus()):
            console.print(line)
    # Before the first write or delete: bad data or a cluster that refuses us changes no folder.
    started = not ray.is_initialized()
    init_ray(address, dashboard, quiet=console is not None and not console.verbose)
    restore_sigterm = catch_sigterm()
    try:
        if address or os.environ.get("RAY_ADDRESS"):  # a cluster: can any node hold a trial?
            from sweetspot.search.preflight import check_cluster_resources

            waiting = check_cluster_resources(config)
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
        if replace:
            delete_results(config, folder)
        if elsewhere and overwrite and study_exists(config, elsewhere):
            import optuna

            from sweetspot.search.study import connect_url

            optuna.delete_study(study_name=config.name, storage=connect_url(elsewhere))
        ray.data.DataContext.get_current().enable_progress_bars = False  # a bar per trial per epoch is noise
        trainable = make_trainable(config, prepared)
        if resume:
            if run_id is None:  # a folder from before run ids, resumed on the user's word: bind it from now on
                run_id = uuid.uuid4().hex
                storage.write_text(
                    storage.join(folder, layout.CONFIG_FILE),
                    yaml.safe_dump({**saved, "results_folder": folder, "run_id": run_id}, sort_keys=False),
                )
            lost = set_aside_lost_trials(folder)
            if lost:
                print(
                    f"resume: {len(lost)} trial(s) the interrupted run started after it last saved its state cannot "
                    f"be continued; set aside in {storage.join(folder, layout.LOST_FOLDER)} ({', '.join(lost)}), "
                    f"new trials take their place",
                    file=sys.stderr,
                    flush=True,
                )
            tuner = _restore(folder, trainable, verified, retry_errored=retry_errored)
        else:
            run_id = uuid.uuid4().hex
            tuner = _new_tuner(config, folder, prepared, trainable, run_id, console=console)
        from sweetspot.search.checkpoints import tolerate_deleted_checkpoints

        tolerate_deleted_checkpoints()  # a resume may delete a checkpoint the killed run already deleted
        _fit_and_settle(config, folder, tuner, report_every=report_every, new=not resume)
    finally:
        if resume and trust_folder and storage.exists(folder):  # the user vouched for this folder; sign it as this run's
            signing.sign(folder, run_id=run_id)
        signing.record_newest(folder)
        try:
            if started:  # our own Ray: shut it down before the interpreter exits (else its C++ threads may
                with _signals_held():  # print "Check failed ... Broken pipe" while they are torn down)
                    ray.shutdown()
        finally:
            restore_sigterm()
    return folder


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM ignored while our Ray shuts down (a second or so, the search already over):
    a KeyboardInterrupt inside `ray.shutdown()` leaves its C++ core half torn down, and the process
    exits 1 with nothing said."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)


def _new_tuner(config: ExperimentConfig, folder: str, prepared: Prepared, trainable, run_id: str, *, console=None):
    """Writes `sweetspot.yaml` and builds the Tuner; the signatures bind both (`search.signed_state`)."""
    from sweetspot.search.console import label_names
    from sweetspot.search.signed_state import signer, write_tuner_state

    resolved = {
        **to_dict(config),
        "prepared_path": str(prepared.path),
        "prepared_data": data_record(prepared),
        "optuna_storage": None if config.search.algorithm in ("grid", "edges") else study_storage_url(config),
        "results_folder": folder,
        "run_id": run_id,
    }
    written = yaml.safe_dump(resolved, sort_keys=False).encode()
    storage.write_bytes(storage.join(folder, layout.CONFIG_FILE), written)
    tuner = build_tuner(
        config,
        trainable,
        folder,
        run_id=run_id,
        config_digest=signing.digest(written),
        console=console,
        label_names=label_names(prepared.path),
    )
    sign = signer(tuner._local_tuner.get_run_config().callbacks)
    sign.tuner_digest = write_tuner_state(tuner, folder)
    return tuner


def _restore(folder: str, trainable, verified: dict[str, bytes], *, retry_errored: bool):
    """`Tuner.restore` reading the folder's signed files from the private verified copy (empty with
    --trust-results-folder: then from the folder itself)."""
    from ray import tune

    if not verified:
        return tune.Tuner.restore(folder, trainable=trainable, resume_unfinished=True, resume_errored=retry_errored)
    from sweetspot.search.signed_state import verified_filesystem

    fs, path = verified_filesystem(folder, verified)
    return tune.Tuner.restore(
        path, trainable=trainable, resume_unfinished=True, resume_errored=retry_errored, storage_filesystem=fs
    )


def _fit_and_settle(config: ExperimentConfig, folder: str, tuner, *, report_every: float | None, new: bool) -> None:
    """Runs the Tuner; then marks the trials an interruption stopped, or fails the study's orphans. A
    new search that fails before any trial reported leaves no folder behind to block the next run."""
    from sweetspot.search.live import LiveRun

    try:
        with LiveRun(folder, report_every=report_every):  # run.json (running -> finished / interrupted), the refresh
            outcome = fit(tuner)
    except Exception:
        if new and not any_trial_reported(folder):
            delete_results(config, folder)
        raise
    if outcome.interrupted:
        mark_interrupted(folder, unfinished_trials(folder))
        raise SearchInterrupted(folder, terminated=outcome.terminated)
    if config.search.algorithm in ("tpe", "random"):
        fail_orphaned_trials(config)


def any_trial_reported(folder: str) -> bool:
    """Whether a trial of the results folder wrote a result line."""
    return any(
        is_dir
        and name.startswith(layout.TRIAL_PREFIX)
        and (storage.read_bytes(storage.join(folder, name, layout.RESULT_FILE)) or b"").strip()
        for name, is_dir in (storage.list_dir(folder) if storage.exists(folder) else [])
    )
