"""Run records: a Tune callback that keeps `summary.json` in the results folder up to date.

Ray's dashboard has no Tune view, so this file is how a user (or `sweetspot analyze`) sees every
trial's status, config, epochs and metrics while the search runs and after it ends.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ray import tune

from trainable import keys


class SummaryCallback(tune.Callback):
    """Rewrites `<experiment>/summary.json` at most every `interval_s` seconds, and at every
    trial's end and the experiment's end.

    Statuses: `running`, `terminated` (all epochs), `early_stopped` (stopped by the scheduler
    before `max_epochs`), `diverged`, `errored`.
    """

    def __init__(self, folder: Path, *, metric: str, mode: str, max_epochs: int, interval_s: float = 5.0):
        self.folder = Path(folder)
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.interval_s = interval_s
        self.trials: dict[str, dict[str, Any]] = {}
        self._written = 0.0

    def _record(self, trial) -> dict[str, Any]:
        return self.trials.setdefault(trial.trial_id, {
            "trial_id": trial.trial_id,
            "status": "pending",
            "config": dict(trial.config),
            "folder": os.path.basename(trial.path) if getattr(trial, "path", None) else None,
            "epochs": 0,
            "last": {},
            "best": {},
            "error": None,
        })

    def on_trial_start(self, iteration, trials, trial, **info):
        record = self._record(trial)
        record["status"] = "running"
        record["folder"] = os.path.basename(trial.path) if trial.path else record["folder"]
        self._write()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        record = self._record(trial)
        last = {k: result[k] for k in keys.REPORTED if k in result}
        record["last"] = last
        record["epochs"] = int(result.get(keys.EPOCH, record["epochs"]))
        if self.metric in last and not last.get(keys.DIVERGED):
            value, best = last[self.metric], record["best"].get(self.metric)
            if best is None or (value > best if self.mode == "max" else value < best):
                record["best"] = dict(last)
        self._write()

    def on_trial_complete(self, iteration, trials, trial, **info):
        record = self._record(trial)
        if record["last"].get(keys.DIVERGED):
            record["status"] = "diverged"
        elif record["epochs"] < self.max_epochs:
            record["status"] = "early_stopped"
        else:
            record["status"] = "terminated"
        self._write(force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        record = self._record(trial)
        record["status"] = "errored"
        error_file = getattr(trial, "error_file", None)
        record["error"] = _last_line(error_file) if error_file else "unknown error"
        self._write(force=True)

    def on_experiment_end(self, trials, **info):
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.interval_s:
            return
        self._written = now
        summary = {
            "metric": self.metric,
            "mode": self.mode,
            "max_epochs": self.max_epochs,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "trials": list(self.trials.values()),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{keys.SUMMARY_FILE}.tmp"
        tmp.write_text(json.dumps(summary, indent=1, default=str))
        os.replace(tmp, self.folder / keys.SUMMARY_FILE)  # readers never see a half-written file


def _last_line(path: str) -> str:
    try:
        lines = [l for l in Path(path).read_text().splitlines() if l.strip()]
        return lines[-1] if lines else "unknown error"
    except OSError:
        return "unknown error"
