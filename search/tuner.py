"""The Tuner of a new search, and running it: `tuner.fit()` and how an interruption is seen."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sweetspot import layout, storage
from sweetspot.search.components import early_collapse_rule, search_components
from sweetspot.search.config import ExperimentConfig
from sweetspot.search.ray_start import usable_cpus
from sweetspot.trainable import keys


def build_tuner(
    config: ExperimentConfig,
    trainable,
    folder: str,
    *,
    run_id: str = "",
    config_digest: str = "",
    console=None,
    label_names: dict[int, str] | None = None,
):
    """The Tuner of a new search: `search_components`, the run records and the results folder
    (`run_id`, `config_digest`: what its state's signatures bind, `search.signed_state`); `console`
    (search/console.Console): its per-trial lines and progress, None: Tune's own output."""
    from ray import tune

    from sweetspot.search.signed_state import SignStateCallback

    search = config.search
    parts = search_components(config)
    return tune.Tuner(
        trainable,
        param_space=parts.param_space,
        tune_config=tune.TuneConfig(
            metric=search.metric,
            mode=search.mode,
            search_alg=parts.searcher,
            scheduler=parts.scheduler,
            num_samples=parts.num_samples,
            max_concurrent_trials=None if search.algorithm == "grid" else search.max_concurrent_trials,
            trial_dirname_creator=trial_dirname,
            # A new trial reuses a finished trial's worker process: no process start and no
            # re-import of torch and transformers (about 2.5 s a trial on this machine).
            reuse_actors=True,
        ),
        run_config=run_config(
            config,
            folder,
            parts.stoppers,
            SignStateCallback(folder, run_id, config_digest),
            console=console,
            label_names=label_names,
        ),
    )


def run_config(
    config: ExperimentConfig, folder: str, stoppers: list, signer, *, console=None, label_names: dict[int, str] | None = None
):
    """Where the search writes, what stops and keeps its trials, and the callbacks that record and sign it."""
    from ray import tune
    from ray.tune.stopper import CombinedStopper

    from sweetspot.search.callbacks import integration_callbacks
    from sweetspot.search.checkpoints import OptimizerStateInLatestOnly, ResumeFromNewestCheckpoint
    from sweetspot.search.live import InterruptWatch
    from sweetspot.search.records import SummaryCallback

    search = config.search
    shown = (
        console.callback(config, label_names=label_names, early_collapse=early_collapse_rule(config), cpus=usable_cpus())
        if console
        else None
    )
    return tune.RunConfig(
        name=config.name,
        storage_path=folder.rsplit("/", 1)[0] if storage.is_uri(folder) else str(Path(folder).parent),
        stop=CombinedStopper(*stoppers) if stoppers else None,
        failure_config=tune.FailureConfig(max_failures=search.max_failures),
        checkpoint_config=checkpoint_config(search.checkpoints_to_keep),
        callbacks=[
            SummaryCallback(
                folder,
                metric=search.metric,
                mode=search.mode,
                max_epochs=config.train.epochs,
                collapse_patience=search.stop_on_collapse,
                early_collapse=early_collapse_rule(config),
            ),
            ResumeFromNewestCheckpoint(),
            OptimizerStateInLatestOnly(),
            InterruptWatch(),
            signer,
            *([shown] if shown else []),
            *integration_callbacks(config, folder),
        ],
        verbose=console.tune_verbosity if console else None,
    )


def checkpoint_config(best: int):
    """The keep-best policy: a trial's `best` best checkpoints by trainable/score.py's score (the reports
    with the highest `improvement`: ties keep the earlier one) and, always, its latest (Tune never
    deletes the latest), which alone keeps optimizer state (search/checkpoints.py)."""
    from ray import tune

    return tune.CheckpointConfig(num_to_keep=best, checkpoint_score_attribute=keys.IMPROVEMENT, checkpoint_score_order="max")


def trial_dirname(trial) -> str:
    return layout.trial_folder(trial.trial_id)


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped `tuner.fit()`; Tune saved the experiment, which `folder` resumes."""

    def __init__(self, folder: str, *, terminated: bool = False):
        super().__init__(folder)
        self.folder, self.terminated = folder, terminated


@dataclass(frozen=True)
class Outcome:
    interrupted: bool  # Ctrl-C or SIGTERM ended the run; Tune saved it
    terminated: bool  # by SIGTERM


_sigterm = threading.Event()  # SIGTERM came while `catch_sigterm` held


def catch_sigterm():
    """From Ray's start to the search's end, SIGTERM (a scheduler or `kill` stopping the driver) is
    turned into SIGINT, so that it ends the way Ctrl-C does wherever it lands, and `terminated()` says
    it came. (`ray.init` installs a handler that exits with status 15 and no word.) Returns the
    function that puts the previous handler back."""
    import signal

    _sigterm.clear()
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_sigterm(signum, frame):
        _sigterm.set()
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)


def terminated() -> bool:
    """SIGTERM came during the search (`catch_sigterm`)."""
    return _sigterm.is_set()


def fit(tuner) -> Outcome:
    """Runs the Tuner. Tune catches the first SIGINT itself (it stops the trials, saves the
    experiment and returns normally), and its handler then puts the one it found back: that is how
    the interruption is seen here. SIGTERM comes as that SIGINT (`catch_sigterm`)."""
    import signal

    main = threading.current_thread() is threading.main_thread()
    catches = main and not int(os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0"))
    before = signal.getsignal(signal.SIGINT)
    tuner.fit()
    interrupted = catches and signal.getsignal(signal.SIGINT) is before
    return Outcome(interrupted=interrupted, terminated=terminated())
