"""Read a results folder into per-trial records, with no Ray running.

A results folder is what `sweetspot search` writes to `<storage_path>/<name>/`:

    sweetspot.yaml            the resolved experiment config
    summary.json              run records (status per trial), kept current by the search
    trial_<id>/params.json    the trial's sampled parameters (Tune)
    trial_<id>/result.json    one JSON object per report, i.e. per epoch (Tune)
    trial_<id>/checkpoint_*/  the latest checkpoint(s)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainable import keys

SEARCHED = ("optimizer", "lr", "weight_decay", "seed")


class ResultsError(ValueError):
    """The folder is not a sweetspot results folder."""


@dataclass
class TrialResult:
    """One trial: its status, sampled config and the metrics it reported each epoch."""

    trial_id: str
    status: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per reported epoch
    error: str | None = None
    folder: str | None = None

    @property
    def epochs(self) -> int:
        return max((int(row.get(keys.EPOCH, 0)) for row in self.history), default=0)

    def best(self, metric: str = keys.VAL_P1, mode: str = "max") -> dict[str, Any]:
        """The epoch row with the best finite `metric` (diverged epochs excluded); {} if none."""
        rows = [r for r in self.history if _finite(r.get(metric)) and not r.get(keys.DIVERGED)]
        if not rows:
            return {}
        pick = max if mode == "max" else min
        return pick(rows, key=lambda r: r[metric])


@dataclass
class Results:
    folder: Path
    metric: str
    mode: str
    trials: list[TrialResult]
    config: dict[str, Any]

    @property
    def majority_p1(self) -> float | None:
        """The validation floor reported by the trials (P@1 of the most frequent train label)."""
        for trial in self.trials:
            for row in trial.history:
                if _finite(row.get(keys.MAJORITY_P1)):
                    return float(row[keys.MAJORITY_P1])
        return None

    def ranked(self) -> list[TrialResult]:
        """Trials by best metric, best first; trials without a value last."""
        sign = -1.0 if self.mode == "max" else 1.0

        def key(t: TrialResult):
            value = t.best(self.metric, self.mode).get(self.metric)
            return (value is None, sign * value if value is not None else 0.0, t.trial_id)

        return sorted(self.trials, key=key)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written while the search runs
                break
    return rows


def load_results(folder: str | Path) -> Results:
    """Reads `folder` (a results folder) into `Results`.

    Raises:
        ResultsError: the folder does not exist or holds no sweetspot experiment.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    summary_path, config_path = folder / keys.SUMMARY_FILE, folder / keys.CONFIG_FILE
    if not summary_path.is_file() and not config_path.is_file():
        raise ResultsError(f"{folder}: not a sweetspot results folder (no {keys.SUMMARY_FILE} or {keys.CONFIG_FILE})")
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    search = config.get("search", {})
    metric = summary.get("metric") or search.get("metric") or keys.VAL_P1
    mode = summary.get("mode") or search.get("mode") or "max"

    trials: dict[str, TrialResult] = {}
    for record in summary.get("trials", []):
        trials[record["trial_id"]] = TrialResult(
            trial_id=record["trial_id"], status=record["status"], config=_searched(record.get("config", {})),
            error=record.get("error"), folder=record.get("folder"))
    for result_file in sorted(folder.glob("*/result.json")):
        rows = _read_jsonl(result_file)
        params_file = result_file.parent / "params.json"
        params = json.loads(params_file.read_text()) if params_file.is_file() else {}
        trial_id = rows[0]["trial_id"] if rows else result_file.parent.name.removeprefix("trial_")
        trial = trials.setdefault(trial_id, TrialResult(trial_id=trial_id, status="unknown", config=_searched(params)))
        trial.folder = result_file.parent.name
        trial.config = trial.config or _searched(params)
        trial.history = [{k: row[k] for k in row if k in keys.REPORTED} for row in rows]
    return Results(folder=folder, metric=metric, mode=mode, trials=list(trials.values()), config=config)


def _searched(config: dict[str, Any]) -> dict[str, Any]:
    return {k: config[k] for k in SEARCHED if k in config}
