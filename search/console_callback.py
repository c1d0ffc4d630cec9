"""The Tune callback behind sweetspot's console (search/console.py): a line per finished trial, the progress."""

from __future__ import annotations

import math
import time
from typing import Any

from ray import tune

from sweetspot import layout
from sweetspot.search.config import ExperimentConfig
from sweetspot.search.console import Console, Progress, _config_text, _duration, concurrency, trial_cap, verdict
from sweetspot.search.records import read_result_file
from sweetspot.trainable import keys

QUIET_LINE_S = 300.0  # in a file, a progress line at least this often while no trial finishes


class ConsoleCallback(tune.Callback):
    """Writes `[done/cap] <config>  <verdict>  <metric> <score>  <duration>` as each trial ends, and the progress."""

    def __init__(
        self,
        console: Console,
        config: ExperimentConfig,
        *,
        label_names: dict[int, str] | None = None,
        early_collapse: dict[str, float] | None = None,
        cpus: float | None = None,
    ):
        self.console, self.config, self.early_collapse = console, config, early_collapse
        self.label_names = label_names or {}
        self.progress = Progress(cap=trial_cap(config), budget=config.train.epochs, at_once=concurrency(config, cpus))
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._started: dict[str, float] = {}
        self._ended: set[str] = set()
        self._drawn = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment (tuner.pkl); the stream stays behind and a
        # restored callback writes to the restoring process's stdout.
        state = dict(self.__dict__)
        state["console"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = self.console or Console()

    def setup(self, **info):
        self.progress.started = time.monotonic()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._started.setdefault(trial.trial_id, time.monotonic())
        self._update(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        rows = self._rows.setdefault(trial.trial_id, [])
        row = layout.reported(result)
        if rows and row.get(keys.EPOCH) is not None and rows[-1].get(keys.EPOCH, -1) >= row[keys.EPOCH]:
            del rows[next(i for i, r in enumerate(rows) if r.get(keys.EPOCH, -1) >= row[keys.EPOCH]) :]  # a retried epoch
        rows.append(row)
        self._update(trials)

    def on_step(self, iteration, trials, **info):
        if self.console.tty and time.monotonic() - self._drawn >= 1.0:  # the bar's elapsed time ticks
            self._update(trials)
        elif not self.console.tty and time.monotonic() - self.console.last_line >= QUIET_LINE_S:  # a file: a sign of life
            self._update(trials, finished=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finished(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finished(trials, trial, "ERROR")

    def on_experiment_end(self, trials, **info):
        self.console.end_progress()

    def _rows_of(self, trial) -> list[dict[str, Any]]:
        if trial.trial_id not in self._rows:  # restored by a resume: read back from its result.json
            where = f"{layout.trial_folder(trial.trial_id)}/{layout.RESULT_FILE}"
            rows = layout.parse_result_lines(read_result_file(trial), where=where)
            self._rows[trial.trial_id] = [layout.reported(r) for r in rows]
        return self._rows[trial.trial_id]

    def _update(self, trials, *, finished: bool = False) -> None:
        self.progress.running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in self._ended)
        self.progress.done = len(self._ended)
        self._drawn = time.monotonic()
        self.console.progress(self.progress, finished=finished)

    def _finished(self, trials, trial, status: str) -> None:
        """`status`: how Tune is ending the trial (its own `trial.status` changes only after the callbacks ran)."""
        if trial.trial_id in self._ended:
            return
        self._ended.add(trial.trial_id)
        search, train = self.config.search, self.config.train
        rows = self._rows_of(trial)
        error = None
        if status == "ERROR":
            from sweetspot.search.records import _last_line

            error = _last_line(getattr(trial, "error_file", None) or "")
        record = layout.trial_record(
            trial_id=trial.trial_id,
            tune_status=status,
            config=dict(trial.config),
            rows=rows,
            metric=search.metric,
            mode=search.mode,
            max_epochs=train.epochs,
            collapse_patience=search.stop_on_collapse,
            early_collapse=self.early_collapse,
            error=error,
        )
        words, value = verdict(
            record,
            rows,
            budget=train.epochs,
            metric=search.metric,
            mode=search.mode,
            margin=train.collapse_p1_margin,
            label_names=self.label_names,
        )
        took = time.monotonic() - self._started.get(trial.trial_id, self.progress.started)
        epochs = float(rows[-1].get(keys.EPOCH, 0.0)) if rows else 0.0
        self.progress.durations.append(took)
        self.progress.epochs.append(max(epochs, 1e-3))
        score = f"{search.metric} {value:.3f}" if isinstance(value, float) and math.isfinite(value) else f"{search.metric}   -  "
        n = len(self._ended)
        width = len(str(self.progress.cap))
        self.console.print(
            f"[{n:>{width}}/{self.progress.cap}] {_config_text(trial.config):<28} {score}  {_duration(took):>4}  {words}"
        )
        self._update(trials, finished=True)
