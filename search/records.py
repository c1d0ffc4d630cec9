"""Run records: a Tune callback that keeps `summary.json` in the results folder up to date.

Ray's dashboard has no Tune view, so this file is how a user (`sweetspot status`) sees every
trial's status, config, epochs and metrics while the search runs and after it ends. Records are
rebuilt from Tune's own trial objects at every write, so a resumed search (whose restored trials
fire no events) still lists every trial.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray import tune

from sweetspot import layout, storage
from sweetspot.trainable import keys


class SummaryCallback(tune.Callback):
    """Rewrites `<experiment>/summary.json` at most every `interval_s` seconds, and at every
    trial's end and the experiment's end. `folder` is a local path or a storage URI.

    Each record is `sweetspot.layout.trial_record` (statuses and fields there), the file
    `sweetspot.layout.summary_document`: the test fixtures write them with the same functions.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        metric: str,
        mode: str,
        max_epochs: int,
        collapse_patience: int | None = None,
        early_collapse: dict[str, float] | None = None,
        interval_s: float = 5.0,
    ):
        self.folder = str(folder)
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.collapse_patience, self.early_collapse = collapse_patience, early_collapse
        self.interval_s = interval_s
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._written = 0.0

    # Tune's hooks: every one passes the full list of trials.
    def on_trial_add(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._write(trials)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        rows = self._rows(trial)
        row = layout.reported(result)
        if rows and row.get(keys.EPOCH) is not None and rows[-1].get(keys.EPOCH, -1) >= row[keys.EPOCH]:
            # a trial retried after a failure reports its epochs again from its checkpoint
            del rows[next(i for i, r in enumerate(rows) if r.get(keys.EPOCH, -1) >= row[keys.EPOCH]) :]
        rows.append(row)
        self._write(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write(trials, force=True)

    def on_experiment_end(self, trials, **info):
        self._write(trials, force=True)

    def _rows(self, trial) -> list[dict[str, Any]]:
        """This trial's reported rows; for a trial restored from an earlier run, read back from
        its result.json."""
        if trial.trial_id not in self._history:
            where = f"{layout.trial_folder(trial.trial_id)}/{layout.RESULT_FILE}"
            self._history[trial.trial_id] = [
                layout.reported(r) for r in layout.parse_result_lines(read_result_file(trial), where=where)
            ]
        return self._history[trial.trial_id]

    def _record(self, trial) -> dict[str, Any]:
        error = None
        if trial.status == "ERROR":
            error = _last_line(getattr(trial, "error_file", None) or str(Path(trial.local_path or "", "error.txt")))
        return layout.trial_record(
            trial_id=trial.trial_id,
            tune_status=trial.status,
            config=dict(trial.config),
            rows=self._rows(trial),
            metric=self.metric,
            mode=self.mode,
            max_epochs=self.max_epochs,
            collapse_patience=self.collapse_patience,
            early_collapse=self.early_collapse,
            folder=Path(trial.local_path).name if getattr(trial, "local_path", None) else None,
            error=error,
        )

    def _write(self, trials, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.interval_s:
            return
        self._written = now
        summary = layout.summary_document(
            [self._record(t) for t in trials],
            metric=self.metric,
            mode=self.mode,
            max_epochs=self.max_epochs,
            updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        storage.write_text(storage.join(self.folder, layout.SUMMARY_FILE), json.dumps(summary, indent=1, default=str))


def read_result_file(trial) -> str:
    """The trial's result.json: from the driver's staging copy, else from the storage filesystem."""
    staged = Path(trial.local_path or "", layout.RESULT_FILE) if getattr(trial, "local_path", None) else None
    if staged is not None and staged.is_file():
        return staged.read_text()
    try:
        fs = trial.storage.storage_filesystem
        with fs.open_input_stream(f"{trial.path}/{layout.RESULT_FILE}") as f:
            return f.read().decode()
    except Exception:  # not written yet (a pending trial)
        return ""


def _last_line(path: str) -> str:
    try:
        lines = [l for l in Path(path).read_text().splitlines() if l.strip()]
        return lines[-1] if lines else "unknown error"
    except OSError:
        return "unknown error"
